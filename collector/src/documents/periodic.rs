//! An IT officer's periodic report (QĐ 02/2017 Điều 12.1) as the administrative document the Sở
//! receives: the clean blocks of `cntt_common::report::document_blocks` (no front matter, hints or
//! instructions) laid out in the Nghị định 30/2020 format by [`super::nd30`], issued by the
//! officer's unit as a reporting body ("UBND xã …" for a commune, the department's own name) and
//! addressed to the provincial IT authority in force on the submission date and to the unit's
//! leadership. Pure: the caller reads the stored report, the unit and its profile.

use cntt_common::report::Block as ReportBlock;
use time::OffsetDateTime;

use super::nd30::{self, Block, Document, Table};
use crate::domain::organisation::Organisation;
use crate::services::systems::letterhead_agency;

/// Who issues the report and when: everything of the document that is not its text.
#[derive(Debug, Clone)]
pub struct Issue<'a> {
    /// The unit as a reporting body: `UBND xã Đắk Mil`, `Sở Y tế`.
    pub body: String,
    /// The unit's symbol in document numbers (its profile's, else its code).
    pub symbol: String,
    /// The governing body line of the letterhead; empty for a People's Committee.
    pub parent_agency: String,
    /// The officer who wrote it, signing as the reporter.
    pub officer: String,
    /// Corrected submission time of this version: the document's date.
    pub submitted_at: OffsetDateTime,
    /// The provincial IT authority in force on that date.
    pub authority: &'a Organisation,
}

/// The document of a report whose clean blocks are `blocks`.
pub fn document(blocks: &[ReportBlock], issue: &Issue<'_>) -> Document {
    let mut title = String::new();
    let mut body = Vec::new();
    for block in blocks {
        match block {
            ReportBlock::Title(text) => title = title_case(text),
            ReportBlock::Meta(text) => body.push(Block::Paragraph(text.clone())),
            ReportBlock::Heading(text) => body.push(Block::Heading(text.clone())),
            ReportBlock::Paragraph(text) => body.push(Block::Paragraph(text.clone())),
            ReportBlock::Item(text) => body.push(Block::Item(text.clone())),
            ReportBlock::Table(rows) => body.extend(table(rows)),
        }
    }
    let vietnam = time::macros::offset!(+7);
    Document {
        parent_agency: issue.parent_agency.clone(),
        agency: letterhead_agency(&issue.body),
        number: format!("      /BC-{}", issue.symbol),
        place: issue.authority.place.clone(),
        date: Some(issue.submitted_at.to_offset(vietnam).date()),
        kind: "BÁO CÁO".to_owned(),
        title,
        subtitle: vec![
            "(Theo Điều 12.1 Quy chế ban hành kèm theo Quyết định số 02/2017/QĐ-UBND)".to_owned(),
        ],
        addressees: vec![
            format!("{} {}", issue.authority.name, issue.authority.province),
            format!("Lãnh đạo {}", issue.body),
        ],
        blocks: body,
        recipients: vec!["Như trên;".to_owned(), "Lưu: VT.".to_owned()],
        signer_title: vec!["NGƯỜI BÁO CÁO".to_owned()],
        signer_note: Some("(Ký, ghi rõ họ tên)".to_owned()),
        signer_name: issue.officer.clone(),
        created_at: issue.submitted_at,
    }
}

/// `BÁO CÁO KẾT QUẢ CÔNG TÁC … QUÝ IV NĂM 2026` → the abstract under the kind, in sentence case:
/// `Kết quả công tác … quý IV năm 2026` (Roman numerals stay uppercase).
fn title_case(title: &str) -> String {
    let rest = title.strip_prefix("BÁO CÁO ").unwrap_or(title);
    let mut out = String::new();
    for (index, word) in rest.split(' ').enumerate() {
        if index > 0 {
            out.push(' ');
        }
        let roman = !word.is_empty() && word.chars().all(|c| "IVX".contains(c));
        let acronym = matches!(word, "CNTT" | "UBND" | "LAN" | "WAN");
        if roman || acronym {
            out.push_str(word);
        } else if index == 0 {
            let lower = word.to_lowercase();
            let mut chars = lower.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push_str(&word.to_lowercase());
        }
    }
    out
}

/// A table the officer wrote (or the figures table): the first row heads the columns, which share
/// the text width.
fn table(rows: &[Vec<String>]) -> Option<Block> {
    let (headings, rows) = rows.split_first()?;
    let columns = u32::try_from(headings.len().max(1)).unwrap_or(1);
    Some(Block::Table(Table {
        caption: None,
        widths: vec![nd30::TEXT_WIDTH / columns; headings.len()],
        headings: headings.clone(),
        rows: rows.to_vec(),
        total_last: false,
        left_columns: (0..headings.len()).collect(),
        size: 24,
        padding: 80,
        note: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::organisation::Organisations;

    #[test]
    fn the_title_reads_as_an_abstract() {
        let check = |title: &str, expected: &str| assert_eq!(title_case(title), expected);
        check(
            "BÁO CÁO KẾT QUẢ CÔNG TÁC CÔNG NGHỆ THÔNG TIN QUÝ IV NĂM 2026",
            "Kết quả công tác công nghệ thông tin quý IV năm 2026",
        );
        check(
            "BÁO CÁO KẾT QUẢ CÔNG TÁC CÔNG NGHỆ THÔNG TIN 6 THÁNG ĐẦU NĂM 2026",
            "Kết quả công tác công nghệ thông tin 6 tháng đầu năm 2026",
        );
    }

    #[test]
    fn the_report_is_issued_by_the_unit_to_the_authority_in_force() {
        let organisations = Organisations::shipped();
        let submitted_at = time::macros::datetime!(2026-12-08 09:30 +07:00);
        let blocks = vec![
            ReportBlock::Title(
                "BÁO CÁO KẾT QUẢ CÔNG TÁC CÔNG NGHỆ THÔNG TIN QUÝ IV NĂM 2026".into(),
            ),
            ReportBlock::Meta("Đơn vị: Xã Đắk Mil (mã 68.24670)".into()),
            ReportBlock::Heading("1. Công tác tham mưu".into()),
            ReportBlock::Paragraph("Tham mưu kế hoạch chuyển đổi số.".into()),
            ReportBlock::Table(vec![
                vec!["Chỉ tiêu".into(), "Giá trị".into()],
                vec!["Số máy được giám sát".into(), "2".into()],
            ]),
        ];
        let issue = Issue {
            body: "UBND xã Đắk Mil".into(),
            symbol: "UBND".into(),
            parent_agency: String::new(),
            officer: "Nguyễn Văn An".into(),
            submitted_at,
            authority: organisations.current(submitted_at),
        };
        let text = nd30::text(&document(&blocks, &issue));
        for line in [
            "ỦY BAN NHÂN DÂN",
            "XÃ ĐẮK MIL",
            "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            "/BC-UBND",
            "Lâm Đồng, ngày 08 tháng 12 năm 2026",
            "Kết quả công tác công nghệ thông tin quý IV năm 2026",
            "- Sở Khoa học và Công nghệ tỉnh Lâm Đồng;",
            "- Lãnh đạo UBND xã Đắk Mil.",
            "1. Công tác tham mưu",
            "Số máy được giám sát",
            "NGƯỜI BÁO CÁO",
            "Nguyễn Văn An",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("+++") && !text.contains("<!--"), "{text}");
        let bytes = nd30::docx(&document(&blocks, &issue)).unwrap();
        assert_eq!(
            bytes,
            nd30::docx(&document(&blocks, &issue)).unwrap(),
            "deterministic"
        );
    }
}
