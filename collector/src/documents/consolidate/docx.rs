//! The consolidated report as a DOCX administrative document in the format of Nghị định
//! 30/2020/NĐ-CP: the words from `vi.rs` laid out as a [`documents::nd30::Document`] (header,
//! title, sections I–IV, the summary table, the closing sentence, recipients and signer), written
//! by [`documents::nd30::docx`].

use super::vi::{self, Block};
use super::{Consolidated, DistrictRate};
use crate::documents::nd30::{self, Document, Table, CELL_PADDING, SIZE_11};

// The letterhead's words (national name, motto, "Số:", "Kính gửi:", "Nơi nhận:", the date line)
// are `documents::nd30`'s now; `vi.rs` still holds copies that can go when it is next edited.
#[allow(clippy::type_complexity)]
const _: (
    &str,
    &str,
    &str,
    fn(&str) -> String,
    fn(&str) -> String,
    fn(&str, time::Date) -> String,
) = (
    vi::NATIONAL_NAME,
    vi::MOTTO,
    vi::RECIPIENTS,
    vi::number,
    vi::addressee,
    vi::place_date,
);

/// Left and right padding of the summary table's cells, narrower than the default so that
/// `99,36` and the headings' words fit their columns at 11 pt.
const SUMMARY_PADDING: u32 = 72;

/// Writes the DOCX of `report`; the same report gives the same bytes.
///
/// # Errors
///
/// Only if packing the parts into the zip container fails.
pub fn docx(report: &Consolidated) -> anyhow::Result<Vec<u8>> {
    nd30::docx(&document(report))
}

/// The report as an administrative document.
pub(super) fn document(report: &Consolidated) -> Document {
    let header = &report.header;
    let mut blocks: Vec<nd30::Block> = vi::narrative(report)
        .into_iter()
        .map(|block| match block {
            Block::Heading(text) => nd30::Block::Heading(text),
            Block::Paragraph(text) => nd30::Block::Paragraph(text),
            Block::Item(text) => nd30::Block::Item(text),
            Block::ToComplete(text) => nd30::Block::ToComplete(text),
        })
        .collect();
    blocks.push(nd30::Block::Table(summary_table(report)));
    blocks.push(nd30::Block::Paragraph(vi::closing(report)));
    Document {
        parent_agency: header.parent_agency.clone(),
        agency: header.agency.clone(),
        number: header.number.clone(),
        place: header.place.clone(),
        date: Some(header.date),
        kind: vi::DOCUMENT_KIND.to_owned(),
        title: vi::title(report),
        subtitle: Vec::new(),
        addressees: vec![header.addressee.clone()],
        blocks,
        recipients: header.recipients.clone(),
        signer_title: header.signer_title.lines().map(str::to_owned).collect(),
        signer_note: None,
        signer_name: header.signer_name.clone(),
        created_at: report.generated_at,
    }
}

/// Widths of the summary table's columns: number, name, nine figures.
fn summary_widths() -> Vec<u32> {
    let mut widths = vec![560, 1_995];
    widths.extend([755; 9]);
    widths
}

fn summary_table(report: &Consolidated) -> Table {
    let mut rows: Vec<Vec<String>> = (1..)
        .zip(&report.districts)
        .map(|(number, district): (u32, _)| summary_row(&number.to_string(), district))
        .collect();
    rows.push(summary_row("", &report.province));
    Table {
        caption: Some(vi::TABLE_CAPTION.to_owned()),
        widths: summary_widths(),
        headings: vi::TABLE_HEADINGS.iter().map(|h| (*h).to_owned()).collect(),
        rows,
        total_last: true,
        left_columns: vec![1],
        size: SIZE_11,
        padding: SUMMARY_PADDING.min(CELL_PADDING),
        note: Some(vi::source_note(report)),
    }
}

fn summary_row(number: &str, rate: &DistrictRate) -> Vec<String> {
    // The headings say "(%)", so the cells carry the number only.
    let percent_or_blank = |share: Option<f64>, places| {
        share.map_or_else(String::new, |share| vi::decimal(share * 100.0, places))
    };
    vec![
        number.to_owned(),
        rate.name.clone(),
        rate.required.to_string(),
        rate.on_time.to_string(),
        rate.late.to_string(),
        rate.missing.to_string(),
        rate.pending.to_string(),
        percent_or_blank(rate.submission_rate(), 1),
        percent_or_blank(rate.on_time_rate(), 1),
        rate.incidents.to_string(),
        percent_or_blank(rate.availability_wan, 2),
    ]
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::*;
    use crate::documents::consolidate::example;

    fn parts(bytes: &[u8]) -> Vec<String> {
        let archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a DOCX is a zip");
        archive
            .file_names()
            .map(|name| name.expect("a UTF-8 part name").into_owned())
            .collect()
    }

    fn part(bytes: &[u8], name: &str) -> String {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    /// The text of `document.xml` without markup, paragraphs on their own lines.
    fn plain_text(xml: &str) -> String {
        let mut text = String::new();
        for piece in xml.split('<').skip(1) {
            let (tag, content) = piece.split_once('>').unwrap_or((piece, ""));
            if tag == "/w:p" {
                text.push('\n');
            }
            if tag.starts_with("w:t ") || tag == "w:t" {
                text.push_str(
                    &content
                        .replace("&amp;", "&")
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&quot;", "\"")
                        .replace("&apos;", "'"),
                );
            }
        }
        text
    }

    #[test]
    fn package_has_every_part() {
        let bytes = docx(&example()).unwrap();
        let mut names = parts(&bytes);
        names.sort();
        assert_eq!(
            names,
            [
                "[Content_Types].xml",
                "_rels/.rels",
                "docProps/app.xml",
                "docProps/core.xml",
                "word/_rels/document.xml.rels",
                "word/document.xml",
                "word/header1.xml",
                "word/settings.xml",
                "word/styles.xml",
            ]
        );
        assert_eq!(
            docx(&example()).unwrap(),
            bytes,
            "the same report gives the same bytes"
        );
    }

    #[test]
    fn document_follows_decree_30() {
        let bytes = docx(&example()).unwrap();
        let xml = part(&bytes, "word/document.xml");
        let text = plain_text(&xml);
        for expected in [
            "UBND TỈNH LÂM ĐỒNG\nSỞ KHOA HỌC VÀ CÔNG NGHỆ\n",
            "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc\n",
            "Số: ……/BC-SKHCN\nLâm Đồng, ngày 15 tháng 12 năm 2026\n",
            "BÁO CÁO\nTổng hợp tình hình ứng dụng CNTT quý IV năm 2026\n",
            "Kính gửi: Ủy ban nhân dân tỉnh.\n",
            "I. TÌNH HÌNH THỰC HIỆN CHẾ ĐỘ BÁO CÁO ĐỊNH KỲ\n",
            "II. TÌNH HÌNH SỰ CỐ VÀ KHẢ DỤNG HẠ TẦNG\n",
            "III. ĐỘI NGŨ CÁN BỘ CHUYÊN TRÁCH CÔNG NGHỆ THÔNG TIN\n",
            "IV. ĐÁNH GIÁ CHUNG VÀ ĐỀ XUẤT\n",
            "Bảng tổng hợp tình hình nộp báo cáo theo khối, địa bàn\n",
            "STT\nKhối, địa bàn\nPhải nộp\nĐúng hạn\nTrễ hạn\nChưa nộp\nChưa đến hạn\nTỷ lệ nộp (%)\n",
            "1\nKhối sở, ban, ngành\n4\n2\n1\n1\n0\n75,0\n50,0\n10\n99,36\n",
            "Toàn tỉnh\n10\n5\n2\n2\n1\n70,0\n50,0\n19\n99,03\n",
            "kính báo cáo Ủy ban nhân dân tỉnh xem xét, chỉ đạo./.\n",
            "Nơi nhận:\n- Như trên;\n",
            "- Lưu: VT, CNTT.\n",
            "KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC\n\n\n\n\nNguyễn Văn Bình\n",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
        // Times New Roman on every run, A4 portrait, margins 20/20/30/15 mm.
        let runs = xml.matches("<w:r>").count();
        assert!(runs > 100, "{runs} runs");
        assert_eq!(
            xml.matches(r#"<w:r><w:rPr><w:rFonts w:ascii="Times New Roman""#)
                .count(),
            runs,
            "every run names the font"
        );
        assert!(xml.contains(r#"<w:pgSz w:w="11906" w:h="16838"/>"#));
        assert!(
            xml.contains(r#"<w:pgMar w:top="1134" w:right="850" w:bottom="1134" w:left="1701""#)
        );
        let styles = part(&bytes, "word/styles.xml");
        assert!(styles.contains(r#"w:ascii="Times New Roman""#));
        assert!(styles.contains(r#"<w:lang w:val="vi-VN""#));
        // Rules under the agency name, the motto and the title.
        assert_eq!(xml.matches("<w:pBdr><w:bottom").count(), 3);
    }

    #[test]
    fn text_is_escaped_and_control_characters_dropped() {
        let mut report = example();
        report.header.addressee = "A & B <C>\u{7}".to_owned();
        let xml = part(&docx(&report).unwrap(), "word/document.xml");
        assert!(xml.contains("Kính gửi: A &amp; B &lt;C&gt;."), "{xml}");
    }

    #[test]
    fn one_line_signer_title() {
        let mut report = example();
        report.header.signer_title = "giám đốc".to_owned();
        let text = plain_text(&part(&docx(&report).unwrap(), "word/document.xml"));
        assert!(
            text.contains("\nGIÁM ĐỐC\n\n\n\n\nNguyễn Văn Bình\n"),
            "{text}"
        );
    }
}
