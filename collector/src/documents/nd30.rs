//! One administrative document in the format of Nghị định 30/2020/NĐ-CP (Phụ lục I) as DOCX:
//! A4, margins top and bottom 20 mm, left 30 mm, right 15 mm, Times New Roman throughout; the
//! header (governing body, agency, number and symbol | national name, motto, place and date) and
//! the signature block ("Nơi nhận" | signer) as borderless two-column tables; the short solid rules
//! under the agency name, the motto and the title as paragraph borders; page numbers centred in
//! the top margin from the second page on.
//!
//! [`Document`] is plain data: the header fields, the kind and title, the blocks of the body
//! (headings, paragraphs, list items, lines to complete by hand, label/value tables, tables),
//! the recipients and the signer. [`docx`] writes it; the OOXML parts are written by hand
//! (`[Content_Types].xml`, the relationships, `word/document.xml`, `styles.xml`, `settings.xml`,
//! `header1.xml` and the document properties) and packed with `zip` at a fixed time, so the same
//! document gives the same bytes. [`text`] gives the same document as plain text, for e-mails and
//! tests.

use std::fmt::Write as _;
use std::io::{Cursor, Write};

use anyhow::Context;
use time::{Date, OffsetDateTime};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// National name (quốc hiệu).
pub const NATIONAL_NAME: &str = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM";
/// Motto (tiêu ngữ).
pub const MOTTO: &str = "Độc lập - Tự do - Hạnh phúc";
/// Heading of the recipients' list.
pub const RECIPIENTS: &str = "Nơi nhận:";
/// Name of the documents' author in their properties.
pub const GENERATOR: &str = "Hệ thống giám sát hạ tầng CNTT";
/// What stands for a field to complete by hand.
pub const BLANK: &str = "……";

/// One administrative document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Governing body (tên cơ quan chủ quản), printed uppercase; empty when there is none.
    pub parent_agency: String,
    /// Issuing agency (tên cơ quan ban hành), printed uppercase and bold; `\n` breaks a line.
    pub agency: String,
    /// Number and symbol after "Số: ", e.g. `……/BC-SKHCN` or `03/BC-UBND`.
    pub number: String,
    /// Place name of the date line: `Lâm Đồng`.
    pub place: String,
    /// Date of the document; none leaves the day, month and year blank to fill by hand.
    pub date: Option<Date>,
    /// Kind of document (tên loại): `BÁO CÁO`.
    pub kind: String,
    /// Abstract (trích yếu), bold under the kind.
    pub title: String,
    /// Lines under the title in italics (a legal basis, a version), before the rule.
    pub subtitle: Vec<String>,
    /// Addressees of "Kính gửi", without final punctuation: one is written on the line itself,
    /// several as a list; none for no "Kính gửi" line.
    pub addressees: Vec<String>,
    /// The body.
    pub blocks: Vec<Block>,
    /// "Nơi nhận" lines, each with its own closing punctuation: `Như trên;`, `Lưu: VT.`.
    pub recipients: Vec<String>,
    /// Signer's authority and title lines, printed uppercase and bold: `KT. GIÁM ĐỐC`,
    /// `PHÓ GIÁM ĐỐC`.
    pub signer_title: Vec<String>,
    /// A line in italics under the title, e.g. `(Ký, ghi rõ họ tên, đóng dấu)`.
    pub signer_note: Option<String>,
    /// Signer's full name; empty leaves the line for the name blank.
    pub signer_name: String,
    /// Time written into the document's properties.
    pub created_at: OffsetDateTime,
}

/// One block of the body.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A section heading (`I. …`), bold, kept with what follows.
    Heading(String),
    /// A justified paragraph with a first-line indent.
    Paragraph(String),
    /// A list item; the layout adds the `- ` prefix.
    Item(String),
    /// A line followed by dots to the margin, and one more dotted line, to complete by hand.
    ToComplete(String),
    /// A two-column table of label and value, thin borders, labels bold.
    Fields(Vec<(String, String)>),
    /// A table of columns.
    Table(Table),
}

/// A table with a heading row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Caption above the table, bold and centred.
    pub caption: Option<String>,
    /// Column widths in twentieths of a point; they should add up to [`TEXT_WIDTH`] or less.
    pub widths: Vec<u32>,
    /// Headings, one per column, repeated on every page.
    pub headings: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
    /// The last row is a total, in bold.
    pub total_last: bool,
    /// Columns aligned left (names); the others are centred (figures).
    pub left_columns: Vec<usize>,
    /// Font size in half-points.
    pub size: u32,
    /// Left and right padding of the cells, twentieths of a point.
    pub padding: u32,
    /// A note under the table in italics (the source of the figures).
    pub note: Option<String>,
}

/// `Lâm Đồng, ngày 05 tháng 02 năm 2026`: days under 10 and the months January and February with
/// a leading zero (Nghị định 30/2020, Phụ lục I, mục II.4); dots for a date to fill by hand.
pub fn place_date(place: &str, date: Option<Date>) -> String {
    let Some(date) = date else {
        return format!("{place}, ngày {BLANK} tháng {BLANK} năm {BLANK}");
    };
    let month = u8::from(date.month());
    let month = if month < 3 {
        format!("{month:02}")
    } else {
        month.to_string()
    };
    format!(
        "{place}, ngày {:02} tháng {month} năm {}",
        date.day(),
        date.year()
    )
}

/// The "Kính gửi" lines: `Kính gửi: A.` for one addressee; `Kính gửi:`, `- A;`, `- B.` for
/// several.
pub fn addressee_lines(addressees: &[String]) -> Vec<String> {
    match addressees {
        [] => Vec::new(),
        [one] => vec![format!("Kính gửi: {one}.")],
        many => {
            let mut lines = vec!["Kính gửi:".to_owned()];
            for (index, addressee) in many.iter().enumerate() {
                let end = if index + 1 == many.len() { '.' } else { ';' };
                lines.push(format!("- {addressee}{end}"));
            }
            lines
        }
    }
}

/// The document as a simple HTML page: the same text as [`text`], label and value tables as
/// tables.
pub fn html(document: &Document) -> String {
    let mut out =
        String::from("<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>");
    out.push_str(&escape(&format!("{} {}", document.kind, document.title)));
    out.push_str(
        "</title></head><body style=\"font-family:'Times New Roman',serif;max-width:46em\">",
    );
    let mut header = String::new();
    if !document.parent_agency.is_empty() {
        header.push_str(&escape(&document.parent_agency.to_uppercase()));
        header.push_str("<br>");
    }
    header.push_str(&format!(
        "<b>{}</b><br>Số: {}",
        escape(&document.agency.to_uppercase()).replace('\n', "<br>"),
        escape(&document.number)
    ));
    let _ = write!(
        out,
        "<table style=\"width:100%\"><tr><td style=\"text-align:center;vertical-align:top\">{header}</td><td style=\"text-align:center;vertical-align:top\"><b>{NATIONAL_NAME}</b><br><b>{MOTTO}</b><br><i>{}</i></td></tr></table>",
        escape(&place_date(&document.place, document.date))
    );
    let _ = write!(
        out,
        "<h2 style=\"text-align:center\">{}<br>{}</h2>",
        escape(&document.kind),
        escape(&document.title)
    );
    for line in &document.subtitle {
        let _ = write!(
            out,
            "<p style=\"text-align:center\"><i>{}</i></p>",
            escape(line)
        );
    }
    for line in addressee_lines(&document.addressees) {
        let _ = write!(out, "<p style=\"text-align:center\">{}</p>", escape(&line));
    }
    for block in &document.blocks {
        match block {
            Block::Heading(text) => {
                let _ = write!(out, "<h3>{}</h3>", escape(text));
            }
            Block::Paragraph(text) | Block::ToComplete(text) => {
                let text = if text.is_empty() { BLANK } else { text };
                let _ = write!(out, "<p>{}</p>", escape(text).replace('\n', "<br>"));
            }
            Block::Item(text) => {
                let _ = write!(out, "<p>- {}</p>", escape(text));
            }
            Block::Fields(fields) => {
                out.push_str("<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse;width:100%\">");
                for (label, value) in fields {
                    let _ = write!(
                        out,
                        "<tr><th style=\"text-align:left;vertical-align:top;width:35%\">{}</th><td>{}</td></tr>",
                        escape(label),
                        escape(value).replace('\n', "<br>")
                    );
                }
                out.push_str("</table>");
            }
            Block::Table(table) => {
                if let Some(caption) = &table.caption {
                    let _ = write!(out, "<p><b>{}</b></p>", escape(caption));
                }
                out.push_str(
                    "<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\"><tr>",
                );
                for heading in &table.headings {
                    let _ = write!(out, "<th>{}</th>", escape(heading));
                }
                out.push_str("</tr>");
                for row in &table.rows {
                    out.push_str("<tr>");
                    for cell in row {
                        let _ = write!(out, "<td>{}</td>", escape(cell));
                    }
                    out.push_str("</tr>");
                }
                out.push_str("</table>");
            }
        }
    }
    out.push_str("<table style=\"width:100%\"><tr><td style=\"vertical-align:top\"><b><i>");
    out.push_str(RECIPIENTS);
    out.push_str("</i></b>");
    for recipient in &document.recipients {
        let _ = write!(out, "<br>- {}", escape(recipient));
    }
    out.push_str("</td><td style=\"text-align:center;vertical-align:top\">");
    for line in &document.signer_title {
        let _ = write!(out, "<b>{}</b><br>", escape(&line.to_uppercase()));
    }
    if let Some(note) = &document.signer_note {
        let _ = write!(out, "<i>{}</i><br>", escape(note));
    }
    let name = if document.signer_name.is_empty() {
        BLANK
    } else {
        &document.signer_name
    };
    let _ = write!(
        out,
        "<br><br><br><b>{}</b></td></tr></table></body></html>",
        escape(name)
    );
    out
}

/// The document as plain text, paragraph by paragraph: the header, the title, the body (label and
/// value on one line), the recipients and the signer.
pub fn text(document: &Document) -> String {
    let mut out = String::new();
    if !document.parent_agency.is_empty() {
        let _ = writeln!(out, "{}", document.parent_agency.to_uppercase());
    }
    let _ = writeln!(out, "{}", document.agency.to_uppercase());
    let _ = writeln!(out, "Số: {}", document.number);
    let _ = writeln!(out, "{NATIONAL_NAME}\n{MOTTO}");
    let _ = writeln!(out, "{}\n", place_date(&document.place, document.date));
    let _ = writeln!(out, "{}\n{}", document.kind, document.title);
    for line in &document.subtitle {
        let _ = writeln!(out, "{line}");
    }
    if !document.addressees.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            addressee_lines(&document.addressees).join("\n")
        );
    }
    out.push('\n');
    for block in &document.blocks {
        match block {
            Block::Heading(text) => {
                let _ = writeln!(out, "\n{text}");
            }
            Block::Paragraph(text) | Block::ToComplete(text) => {
                let _ = writeln!(out, "{text}");
            }
            Block::Item(text) => {
                let _ = writeln!(out, "- {text}");
            }
            Block::Fields(fields) => {
                for (label, value) in fields {
                    let _ = writeln!(out, "{label}: {value}");
                }
            }
            Block::Table(table) => {
                if let Some(caption) = &table.caption {
                    let _ = writeln!(out, "{caption}");
                }
                let _ = writeln!(out, "{}", table.headings.join(" | "));
                for row in &table.rows {
                    let _ = writeln!(out, "{}", row.join(" | "));
                }
                if let Some(note) = &table.note {
                    let _ = writeln!(out, "{note}");
                }
            }
        }
    }
    let _ = writeln!(out, "\n{RECIPIENTS}");
    for recipient in &document.recipients {
        let _ = writeln!(out, "- {recipient}");
    }
    out.push('\n');
    for line in &document.signer_title {
        let _ = writeln!(out, "{}", line.to_uppercase());
    }
    if let Some(note) = &document.signer_note {
        let _ = writeln!(out, "{note}");
    }
    let name = if document.signer_name.is_empty() {
        BLANK
    } else {
        &document.signer_name
    };
    let _ = writeln!(out, "\n{name}");
    out
}

const FONT: &str = "Times New Roman";

/// Page and margins in twentieths of a point (1 mm ≈ 56.7).
const PAGE_WIDTH: u32 = 11_906;
const PAGE_HEIGHT: u32 = 16_838;
const MARGIN_TOP: u32 = 1_134;
const MARGIN_BOTTOM: u32 = 1_134;
const MARGIN_LEFT: u32 = 1_701;
const MARGIN_RIGHT: u32 = 850;
/// Width of the text between the margins (165 mm).
pub const TEXT_WIDTH: u32 = PAGE_WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
/// First-line indent of body paragraphs (1,27 cm).
const FIRST_LINE: u32 = 720;
/// Left and right padding Word and LibreOffice put in table cells.
pub const CELL_PADDING: u32 = 108;

/// Header table: it reaches 300 twips into the left margin so that an agency name fits on one
/// line at 12 pt, as in the usual templates.
const HEADER_INDENT: i32 = -300;
const HEADER_LEFT: u32 = 4_100;
const HEADER_RIGHT: u32 = 5_700;

/// Font sizes in half-points.
pub const SIZE_11: u32 = 22;
pub const SIZE_12: u32 = 24;
pub const SIZE_13: u32 = 26;
pub const SIZE_14: u32 = 28;

/// Writes the DOCX of `document`: the same document gives the same bytes (the zip entries carry a
/// fixed time, the parts are written in a fixed order).
///
/// # Errors
///
/// Only if packing the parts into the zip container fails.
pub fn docx(document: &Document) -> anyhow::Result<Vec<u8>> {
    let parts = [
        ("[Content_Types].xml", CONTENT_TYPES.to_owned()),
        ("_rels/.rels", PACKAGE_RELATIONSHIPS.to_owned()),
        ("docProps/core.xml", core_properties(document)),
        ("docProps/app.xml", APP_PROPERTIES.to_owned()),
        (
            "word/_rels/document.xml.rels",
            DOCUMENT_RELATIONSHIPS.to_owned(),
        ),
        ("word/document.xml", document_xml(document)),
        ("word/styles.xml", styles()),
        ("word/settings.xml", SETTINGS.to_owned()),
        ("word/header1.xml", page_number_header()),
    ];
    // A fixed modification time keeps the bytes a function of the document alone.
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let mut archive = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, text) in parts {
        archive
            .start_file(name, options)
            .with_context(|| format!("adding {name} to the document"))?;
        archive
            .write_all(text.as_bytes())
            .with_context(|| format!("writing {name} into the document"))?;
    }
    let cursor = archive.finish().context("finishing the document's zip")?;
    Ok(cursor.into_inner())
}

const NAMESPACES: &str = concat!(
    r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" "#,
    r#"xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships""#
);

const CONTENT_TYPES: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">"#,
    r#"<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>"#,
    r#"<Default Extension="xml" ContentType="application/xml"/>"#,
    r#"<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>"#,
    r#"<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>"#,
    r#"<Override PartName="/word/settings.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml"/>"#,
    r#"<Override PartName="/word/header1.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"/>"#,
    r#"<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>"#,
    r#"<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>"#,
    r#"</Types>"#
);

const PACKAGE_RELATIONSHIPS: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>"#,
    r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>"#,
    r#"<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>"#,
    r#"</Relationships>"#
);

const DOCUMENT_RELATIONSHIPS: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>"#,
    r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/settings" Target="settings.xml"/>"#,
    r#"<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/header" Target="header1.xml"/>"#,
    r#"</Relationships>"#
);

const APP_PROPERTIES: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">"#,
    r#"<Application>cntt-collector</Application>"#,
    r#"</Properties>"#
);

const SETTINGS: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<w:settings xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">"#,
    r#"<w:zoom w:percent="100"/>"#,
    r#"<w:defaultTabStop w:val="720"/>"#,
    r#"<w:characterSpacingControl w:val="doNotCompress"/>"#,
    r#"<w:compat><w:compatSetting w:name="compatibilityMode" w:uri="http://schemas.microsoft.com/office/word" w:val="15"/></w:compat>"#,
    r#"<w:themeFontLang w:val="vi-VN"/>"#,
    r#"</w:settings>"#
);

fn core_properties(document: &Document) -> String {
    let at = document.created_at.to_offset(time::UtcOffset::UTC);
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            r#"<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" "#,
            r#"xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" "#,
            r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            r#"<dc:title>{title}</dc:title><dc:creator>{creator}</dc:creator><dc:language>vi-VN</dc:language>"#,
            r#"<dcterms:created xsi:type="dcterms:W3CDTF">{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z</dcterms:created>"#,
            r#"</cp:coreProperties>"#
        ),
        title = escape(&format!("{} {}", document.kind, document.title)),
        creator = escape(GENERATOR),
        y = at.year(),
        mo = u8::from(at.month()),
        d = at.day(),
        h = at.hour(),
        mi = at.minute(),
        s = at.second(),
    )
}

/// Times New Roman for every script, 14 pt, Vietnamese; single spacing unless a paragraph says
/// otherwise.
fn styles() -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            r#"<w:styles {ns}>"#,
            r#"<w:docDefaults><w:rPrDefault><w:rPr>"#,
            r#"<w:rFonts w:ascii="{font}" w:hAnsi="{font}" w:eastAsia="{font}" w:cs="{font}"/>"#,
            r#"<w:sz w:val="{size}"/><w:szCs w:val="{size}"/><w:lang w:val="vi-VN" w:eastAsia="en-US" w:bidi="ar-SA"/>"#,
            r#"</w:rPr></w:rPrDefault>"#,
            r#"<w:pPrDefault><w:pPr><w:spacing w:after="0" w:line="240" w:lineRule="auto"/></w:pPr></w:pPrDefault>"#,
            r#"</w:docDefaults>"#,
            r#"<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/><w:qFormat/></w:style>"#,
            r#"<w:style w:type="table" w:default="1" w:styleId="TableNormal"><w:name w:val="Normal Table"/>"#,
            r#"<w:tblPr><w:tblInd w:w="0" w:type="dxa"/><w:tblCellMar><w:top w:w="0" w:type="dxa"/>"#,
            r#"<w:left w:w="{pad}" w:type="dxa"/><w:bottom w:w="0" w:type="dxa"/><w:right w:w="{pad}" w:type="dxa"/>"#,
            r#"</w:tblCellMar></w:tblPr></w:style>"#,
            r#"</w:styles>"#
        ),
        ns = NAMESPACES,
        font = FONT,
        size = SIZE_14,
        pad = CELL_PADDING,
    )
}

/// The page number, centred in the top margin, 14 pt (the first page has no header: `titlePg`).
fn page_number_header() -> String {
    let mut xml = String::new();
    xml.push_str(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#);
    xml.push_str(&format!("<w:hdr {NAMESPACES}>"));
    xml.push_str(r#"<w:p><w:pPr><w:jc w:val="center"/></w:pPr>"#);
    let style = run_properties(Style::plain(SIZE_14));
    xml.push_str(&format!(
        r#"<w:r>{style}<w:fldChar w:fldCharType="begin"/></w:r><w:r>{style}<w:instrText xml:space="preserve"> PAGE </w:instrText></w:r><w:r>{style}<w:fldChar w:fldCharType="separate"/></w:r><w:r>{style}<w:t>2</w:t></w:r><w:r>{style}<w:fldChar w:fldCharType="end"/></w:r>"#
    ));
    xml.push_str("</w:p></w:hdr>");
    xml
}

/// How a run of text looks.
#[derive(Debug, Clone, Copy)]
struct Style {
    bold: bool,
    italic: bool,
    size: u32,
}

impl Style {
    fn plain(size: u32) -> Style {
        Style {
            bold: false,
            italic: false,
            size,
        }
    }

    fn bold(size: u32) -> Style {
        Style {
            bold: true,
            ..Style::plain(size)
        }
    }

    fn italic(size: u32) -> Style {
        Style {
            italic: true,
            ..Style::plain(size)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Center,
    Justify,
}

/// How a paragraph is laid out; spacing in twentieths of a point.
#[derive(Debug, Clone, Copy)]
struct Layout {
    align: Align,
    first_line: u32,
    left: u32,
    right: u32,
    before: u32,
    after: u32,
    /// Line spacing in 240ths of a line (240 = single).
    line: u32,
    keep_next: bool,
}

impl Layout {
    fn center() -> Layout {
        Layout {
            align: Align::Center,
            first_line: 0,
            left: 0,
            right: 0,
            before: 0,
            after: 0,
            line: 240,
            keep_next: false,
        }
    }

    /// Body text: justified, first-line indent, 6 pt after, 1.2 lines.
    fn body() -> Layout {
        Layout {
            align: Align::Justify,
            first_line: FIRST_LINE,
            after: 120,
            line: 288,
            ..Layout::center()
        }
    }
}

/// The document's body, written element by element.
#[derive(Default)]
struct Writer {
    xml: String,
}

impl Writer {
    fn paragraph(&mut self, layout: Layout, runs: &[(&str, Style)]) {
        self.xml.push_str("<w:p>");
        self.paragraph_properties(layout, runs.first().map(|(_, style)| *style), "");
        for (text, style) in runs {
            self.run(text, *style);
        }
        self.xml.push_str("</w:p>");
    }

    fn paragraph_properties(&mut self, layout: Layout, mark: Option<Style>, extra: &str) {
        self.xml.push_str("<w:pPr>");
        if layout.keep_next {
            self.xml.push_str("<w:keepNext/>");
        }
        self.xml.push_str(extra);
        self.xml.push_str(&format!(
            r#"<w:spacing w:before="{}" w:after="{}" w:line="{}" w:lineRule="auto"/>"#,
            layout.before, layout.after, layout.line
        ));
        if layout.left + layout.right + layout.first_line > 0 {
            self.xml.push_str(&format!(
                r#"<w:ind w:left="{}" w:right="{}" w:firstLine="{}"/>"#,
                layout.left, layout.right, layout.first_line
            ));
        }
        let align = match layout.align {
            Align::Left => "left",
            Align::Center => "center",
            Align::Justify => "both",
        };
        self.xml.push_str(&format!(r#"<w:jc w:val="{align}"/>"#));
        if let Some(style) = mark {
            self.xml.push_str(&run_properties(style));
        }
        self.xml.push_str("</w:pPr>");
    }

    /// A run; a line feed in `text` becomes a line break.
    fn run(&mut self, text: &str, style: Style) {
        self.xml.push_str("<w:r>");
        self.xml.push_str(&run_properties(style));
        for (index, line) in text.split('\n').enumerate() {
            if index > 0 {
                self.xml.push_str("<w:br/>");
            }
            self.xml.push_str(&format!(
                r#"<w:t xml:space="preserve">{}</w:t>"#,
                escape(line)
            ));
        }
        self.xml.push_str("</w:r>");
    }

    /// A solid rule `width` long, centred in a space `room` wide, just under the line above: an
    /// empty paragraph 3 pt high with a bottom border between its indents.
    fn rule(&mut self, room: u32, width: u32) {
        let side = room.saturating_sub(width) / 2;
        self.xml.push_str(&format!(
            concat!(
                r#"<w:p><w:pPr><w:pBdr><w:bottom w:val="single" w:sz="6" w:space="1" w:color="auto"/></w:pBdr>"#,
                r#"<w:spacing w:before="0" w:after="0" w:line="60" w:lineRule="exact"/>"#,
                r#"<w:ind w:left="{side}" w:right="{side}"/><w:jc w:val="center"/>"#,
                r#"<w:rPr><w:sz w:val="4"/><w:szCs w:val="4"/></w:rPr></w:pPr></w:p>"#
            ),
            side = side
        ));
    }

    /// A line of text followed by dots to the right margin, for the Sở to fill in.
    fn line_to_fill(&mut self, text: &str) {
        let tabs = format!(
            r#"<w:tabs><w:tab w:val="right" w:leader="dot" w:pos="{TEXT_WIDTH}"/></w:tabs>"#
        );
        let style = Style::plain(SIZE_14);
        for lead in [text, ""] {
            self.xml.push_str("<w:p>");
            self.paragraph_properties(Layout::body(), Some(style), &tabs);
            if !lead.is_empty() {
                self.run(lead, style);
            }
            self.xml.push_str(&format!(
                "<w:r>{}<w:tab/></w:r></w:p>",
                run_properties(style)
            ));
        }
    }

    /// Opens a table of fixed column widths, with thin borders or none, and cells padded by
    /// `padding` left and right.
    fn table_start(&mut self, widths: &[u32], borders: bool, indent: i32, padding: u32) {
        let total: u32 = widths.iter().sum();
        let line = if borders {
            r#"w:val="single" w:sz="4" w:space="0" w:color="auto""#
        } else {
            r#"w:val="nil""#
        };
        self.xml.push_str(&format!(
            r#"<w:tbl><w:tblPr><w:tblW w:w="{total}" w:type="dxa"/><w:tblInd w:w="{indent}" w:type="dxa"/><w:tblBorders>"#
        ));
        for side in ["top", "left", "bottom", "right", "insideH", "insideV"] {
            self.xml.push_str(&format!("<w:{side} {line}/>"));
        }
        self.xml.push_str(&format!(
            concat!(
                r#"</w:tblBorders><w:tblLayout w:type="fixed"/><w:tblCellMar>"#,
                r#"<w:left w:w="{padding}" w:type="dxa"/><w:right w:w="{padding}" w:type="dxa"/>"#,
                r#"</w:tblCellMar><w:tblLook w:val="0000"/></w:tblPr><w:tblGrid>"#
            ),
            padding = padding
        ));
        for width in widths {
            self.xml.push_str(&format!(r#"<w:gridCol w:w="{width}"/>"#));
        }
        self.xml.push_str("</w:tblGrid>");
    }

    fn row_start(&mut self, repeat_as_header: bool) {
        self.xml.push_str("<w:tr><w:trPr><w:cantSplit/>");
        if repeat_as_header {
            self.xml.push_str("<w:tblHeader/>");
        }
        self.xml.push_str("</w:trPr>");
    }

    /// Opens a cell; the summary table centres its cells vertically, the header and signature
    /// blocks align theirs at the top so both columns start on the same line.
    fn cell_start(&mut self, width: u32, vertical: &str) {
        self.xml.push_str(&format!(
            r#"<w:tc><w:tcPr><w:tcW w:w="{width}" w:type="dxa"/><w:vAlign w:val="{vertical}"/></w:tcPr>"#
        ));
    }

    fn cell_end(&mut self) {
        self.xml.push_str("</w:tc>");
    }

    fn row_end(&mut self) {
        self.xml.push_str("</w:tr>");
    }

    fn table_end(&mut self) {
        self.xml.push_str("</w:tbl>");
    }
}

/// `<w:rPr>` of a style, naming the font for every script.
fn run_properties(style: Style) -> String {
    let mut xml = format!(
        r#"<w:rPr><w:rFonts w:ascii="{FONT}" w:hAnsi="{FONT}" w:eastAsia="{FONT}" w:cs="{FONT}"/>"#
    );
    if style.bold {
        xml.push_str("<w:b/><w:bCs/>");
    }
    if style.italic {
        xml.push_str("<w:i/><w:iCs/>");
    }
    xml.push_str(&format!(
        r#"<w:sz w:val="{0}"/><w:szCs w:val="{0}"/></w:rPr>"#,
        style.size
    ));
    xml
}

/// Escapes text for XML and drops the control characters XML 1.0 cannot carry.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push(' '),
            control if control.is_control() => {}
            other => out.push(other),
        }
    }
    out
}

fn document_xml(document: &Document) -> String {
    let mut writer = Writer::default();
    header_block(&mut writer, document);
    title_block(&mut writer, document);
    for block in &document.blocks {
        body_block(&mut writer, block);
    }
    signature_block(&mut writer, document);

    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            r#"<w:document {ns}><w:body>{body}"#,
            r#"<w:sectPr><w:headerReference w:type="default" r:id="rId3"/>"#,
            r#"<w:pgSz w:w="{width}" w:h="{height}"/>"#,
            r#"<w:pgMar w:top="{top}" w:right="{right}" w:bottom="{bottom}" w:left="{left}" w:header="567" w:footer="567" w:gutter="0"/>"#,
            r#"<w:titlePg/></w:sectPr></w:body></w:document>"#
        ),
        ns = NAMESPACES,
        body = writer.xml,
        width = PAGE_WIDTH,
        height = PAGE_HEIGHT,
        top = MARGIN_TOP,
        right = MARGIN_RIGHT,
        bottom = MARGIN_BOTTOM,
        left = MARGIN_LEFT,
    )
}

fn body_block(writer: &mut Writer, block: &Block) {
    match block {
        // Left-aligned: a justified heading's last line would be stretched.
        Block::Heading(text) => writer.paragraph(
            Layout {
                align: Align::Left,
                keep_next: true,
                before: 120,
                ..Layout::body()
            },
            &[(text, Style::bold(SIZE_14))],
        ),
        Block::Paragraph(text) => {
            writer.paragraph(Layout::body(), &[(text, Style::plain(SIZE_14))]);
        }
        Block::Item(text) => writer.paragraph(
            Layout::body(),
            &[(&format!("- {text}"), Style::plain(SIZE_14))],
        ),
        Block::ToComplete(text) => writer.line_to_fill(text),
        Block::Fields(fields) => fields_table(writer, fields),
        Block::Table(table) => columns_table(writer, table),
    }
}

/// Label and value, a third and two thirds of the width, 12 pt.
fn fields_table(writer: &mut Writer, fields: &[(String, String)]) {
    let label_width = 3_400;
    let widths = [label_width, TEXT_WIDTH - label_width];
    writer.table_start(&widths, true, 0, CELL_PADDING);
    let cell = Layout {
        align: Align::Left,
        before: 20,
        after: 20,
        ..Layout::center()
    };
    for (label, value) in fields {
        writer.row_start(false);
        writer.cell_start(widths[0], "top");
        writer.paragraph(cell, &[(label, Style::bold(SIZE_12))]);
        writer.cell_end();
        writer.cell_start(widths[1], "top");
        writer.paragraph(cell, &[(value, Style::plain(SIZE_12))]);
        writer.cell_end();
        writer.row_end();
    }
    writer.table_end();
    // Room between the table and what follows.
    writer.paragraph(
        Layout {
            after: 60,
            ..Layout::center()
        },
        &[("", Style::plain(SIZE_11))],
    );
}

fn columns_table(writer: &mut Writer, table: &Table) {
    if let Some(caption) = &table.caption {
        writer.paragraph(
            Layout {
                before: 240,
                after: 120,
                keep_next: true,
                ..Layout::center()
            },
            &[(caption, Style::bold(SIZE_14))],
        );
    }
    writer.table_start(&table.widths, true, 0, table.padding);
    writer.row_start(true);
    for (heading, width) in table.headings.iter().zip(&table.widths) {
        writer.cell_start(*width, "center");
        writer.paragraph(Layout::center(), &[(heading, Style::bold(table.size))]);
        writer.cell_end();
    }
    writer.row_end();
    for (number, row) in table.rows.iter().enumerate() {
        let style = if table.total_last && number + 1 == table.rows.len() {
            Style::bold(table.size)
        } else {
            Style::plain(table.size)
        };
        writer.row_start(false);
        for (index, (text, width)) in row.iter().zip(&table.widths).enumerate() {
            writer.cell_start(*width, "center");
            let align = if table.left_columns.contains(&index) {
                Align::Left
            } else {
                Align::Center
            };
            writer.paragraph(
                Layout {
                    align,
                    ..Layout::center()
                },
                &[(text, style)],
            );
            writer.cell_end();
        }
        writer.row_end();
    }
    writer.table_end();
    if let Some(note) = &table.note {
        writer.paragraph(
            Layout {
                align: Align::Left,
                before: 60,
                after: 120,
                ..Layout::center()
            },
            &[(note, Style::italic(SIZE_12))],
        );
    }
}

/// Governing body, agency and number on the left; national name, motto, place and date on the
/// right (Nghị định 30/2020, Phụ lục I, ô số 1 to 4).
fn header_block(writer: &mut Writer, document: &Document) {
    let left_room = HEADER_LEFT - 2 * CELL_PADDING;
    let right_room = HEADER_RIGHT - 2 * CELL_PADDING;
    writer.table_start(
        &[HEADER_LEFT, HEADER_RIGHT],
        false,
        HEADER_INDENT,
        CELL_PADDING,
    );

    writer.row_start(false);
    writer.cell_start(HEADER_LEFT, "top");
    if !document.parent_agency.is_empty() {
        writer.paragraph(
            Layout::center(),
            &[(
                &document.parent_agency.to_uppercase(),
                Style::plain(SIZE_12),
            )],
        );
    }
    writer.paragraph(
        Layout::center(),
        &[(&document.agency.to_uppercase(), Style::bold(SIZE_12))],
    );
    // One third of the width of the agency's line.
    writer.rule(left_room, 1_400);
    writer.cell_end();
    writer.cell_start(HEADER_RIGHT, "top");
    writer.paragraph(Layout::center(), &[(NATIONAL_NAME, Style::bold(SIZE_12))]);
    writer.paragraph(Layout::center(), &[(MOTTO, Style::bold(SIZE_13))]);
    // As long as the motto.
    writer.rule(right_room, 3_050);
    writer.cell_end();
    writer.row_end();

    writer.row_start(false);
    let spaced = Layout {
        before: 120,
        ..Layout::center()
    };
    writer.cell_start(HEADER_LEFT, "top");
    writer.paragraph(
        spaced,
        &[(&format!("Số: {}", document.number), Style::plain(SIZE_13))],
    );
    writer.cell_end();
    writer.cell_start(HEADER_RIGHT, "top");
    writer.paragraph(
        spaced,
        &[(
            &place_date(&document.place, document.date),
            Style::italic(SIZE_14),
        )],
    );
    writer.cell_end();
    writer.row_end();
    writer.table_end();
}

/// Kind of document, abstract with a rule under it, addressee (ô số 5 and 9a).
fn title_block(writer: &mut Writer, document: &Document) {
    writer.paragraph(
        Layout {
            before: 360,
            keep_next: true,
            ..Layout::center()
        },
        &[(&document.kind, Style::bold(SIZE_14))],
    );
    writer.paragraph(
        Layout {
            keep_next: true,
            ..Layout::center()
        },
        &[(&document.title, Style::bold(SIZE_14))],
    );
    for line in &document.subtitle {
        writer.paragraph(
            Layout {
                keep_next: true,
                ..Layout::center()
            },
            &[(line, Style::italic(SIZE_13))],
        );
    }
    writer.rule(TEXT_WIDTH, 2_400);
    let lines = addressee_lines(&document.addressees);
    match lines.as_slice() {
        [] => writer.paragraph(
            Layout {
                after: 240,
                ..Layout::center()
            },
            &[("", Style::plain(SIZE_14))],
        ),
        [one] => writer.paragraph(
            Layout {
                before: 240,
                after: 240,
                ..Layout::center()
            },
            &[(one, Style::plain(SIZE_14))],
        ),
        [first, rest @ ..] => {
            // "Kính gửi:" centred-left over the list, as in the usual templates.
            let list = Layout {
                align: Align::Left,
                left: 2_000,
                ..Layout::center()
            };
            writer.paragraph(
                Layout {
                    before: 240,
                    ..list
                },
                &[(first, Style::plain(SIZE_14))],
            );
            for (index, line) in rest.iter().enumerate() {
                let layout = Layout {
                    left: 2_600,
                    after: if index + 2 == lines.len() { 240 } else { 0 },
                    ..list
                };
                writer.paragraph(layout, &[(line, Style::plain(SIZE_14))]);
            }
        }
    }
}

/// "Nơi nhận" on the left; authority, title, room to sign and name on the right (ô số 7, 9b).
fn signature_block(writer: &mut Writer, document: &Document) {
    let left = 4_155;
    let right = TEXT_WIDTH - left;
    writer.table_start(&[left, right], false, 0, CELL_PADDING);
    writer.row_start(false);

    writer.cell_start(left, "top");
    writer.paragraph(
        Layout {
            align: Align::Left,
            before: 240,
            ..Layout::center()
        },
        &[(
            RECIPIENTS,
            Style {
                bold: true,
                italic: true,
                size: SIZE_12,
            },
        )],
    );
    for recipient in &document.recipients {
        writer.paragraph(
            Layout {
                align: Align::Left,
                ..Layout::center()
            },
            &[(&format!("- {recipient}"), Style::plain(SIZE_11))],
        );
    }
    writer.cell_end();

    writer.cell_start(right, "top");
    let mut signer = Layout {
        before: 240,
        ..Layout::center()
    };
    for line in &document.signer_title {
        writer.paragraph(signer, &[(&line.to_uppercase(), Style::bold(SIZE_14))]);
        signer.before = 0;
    }
    if let Some(note) = &document.signer_note {
        writer.paragraph(Layout::center(), &[(note, Style::italic(SIZE_14))]);
    }
    // Room for the signature and the seal.
    for _ in 0..4 {
        writer.paragraph(Layout::center(), &[("", Style::plain(SIZE_14))]);
    }
    writer.paragraph(
        Layout::center(),
        &[(&document.signer_name, Style::bold(SIZE_14))],
    );
    writer.cell_end();

    writer.row_end();
    writer.table_end();
}
