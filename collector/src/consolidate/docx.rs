//! The consolidated report as a DOCX administrative document in the format of Nghị định
//! 30/2020/NĐ-CP (Phụ lục I): A4, margins top and bottom 20 mm, left 30 mm, right 15 mm, Times New
//! Roman throughout; the header (governing body, agency, number and symbol | national name, motto,
//! place and date) and the signature block ("Nơi nhận" | signer) as borderless two-column tables;
//! the short solid rules under the agency name, the motto and the title as paragraph borders;
//! page numbers centred in the top margin from the second page on.
//!
//! The OOXML parts are written by hand (see the design note in `mod.rs`): `[Content_Types].xml`,
//! the relationships, `word/document.xml`, `styles.xml`, `settings.xml`, `header1.xml` and the
//! document properties, packed with `zip`. The words come from `vi.rs`.

use std::io::{Cursor, Write};

use anyhow::Context;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::vi::{self, Block};
use super::{Consolidated, DistrictRate};

const FONT: &str = "Times New Roman";

/// Page and margins in twentieths of a point (1 mm ≈ 56.7).
const PAGE_WIDTH: u32 = 11_906;
const PAGE_HEIGHT: u32 = 16_838;
const MARGIN_TOP: u32 = 1_134;
const MARGIN_BOTTOM: u32 = 1_134;
const MARGIN_LEFT: u32 = 1_701;
const MARGIN_RIGHT: u32 = 850;
/// Width of the text between the margins (165 mm).
const TEXT_WIDTH: u32 = PAGE_WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
/// First-line indent of body paragraphs (1,27 cm).
const FIRST_LINE: u32 = 720;
/// Left and right padding Word and LibreOffice put in table cells.
const CELL_PADDING: u32 = 108;

/// Header table: it reaches 300 twips into the left margin so that an agency name fits on one
/// line at 12 pt, as in the usual templates.
const HEADER_INDENT: i32 = -300;
const HEADER_LEFT: u32 = 4_100;
const HEADER_RIGHT: u32 = 5_700;

/// Font sizes in half-points.
const SIZE_11: u32 = 22;
const SIZE_12: u32 = 24;
const SIZE_13: u32 = 26;
const SIZE_14: u32 = 28;

/// Writes the DOCX of `report`.
///
/// # Errors
///
/// Only if packing the parts into the zip container fails.
pub fn docx(report: &Consolidated) -> anyhow::Result<Vec<u8>> {
    let parts = [
        ("[Content_Types].xml", CONTENT_TYPES.to_owned()),
        ("_rels/.rels", PACKAGE_RELATIONSHIPS.to_owned()),
        ("docProps/core.xml", core_properties(report)),
        ("docProps/app.xml", APP_PROPERTIES.to_owned()),
        (
            "word/_rels/document.xml.rels",
            DOCUMENT_RELATIONSHIPS.to_owned(),
        ),
        ("word/document.xml", document(report)),
        ("word/styles.xml", styles()),
        ("word/settings.xml", SETTINGS.to_owned()),
        ("word/header1.xml", page_number_header()),
    ];
    // A fixed modification time keeps the bytes a function of the report alone.
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

fn core_properties(report: &Consolidated) -> String {
    let at = report.generated_at.to_offset(time::UtcOffset::UTC);
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
        title = escape(&format!("{} {}", vi::DOCUMENT_KIND, vi::title(report))),
        creator = escape(vi::GENERATOR),
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

fn document(report: &Consolidated) -> String {
    let mut writer = Writer::default();
    header_block(&mut writer, report);
    title_block(&mut writer, report);
    for block in vi::narrative(report) {
        match block {
            // Left-aligned: a justified heading's last line would be stretched.
            Block::Heading(text) => writer.paragraph(
                Layout {
                    align: Align::Left,
                    keep_next: true,
                    before: 120,
                    ..Layout::body()
                },
                &[(&text, Style::bold(SIZE_14))],
            ),
            Block::Paragraph(text) => {
                writer.paragraph(Layout::body(), &[(&text, Style::plain(SIZE_14))]);
            }
            Block::Item(text) => writer.paragraph(
                Layout::body(),
                &[(&format!("- {text}"), Style::plain(SIZE_14))],
            ),
            Block::ToComplete(text) => writer.line_to_fill(&text),
        }
    }
    summary_table(&mut writer, report);
    writer.paragraph(
        Layout {
            before: 120,
            ..Layout::body()
        },
        &[(&vi::closing(report), Style::plain(SIZE_14))],
    );
    signature_block(&mut writer, report);

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

/// Governing body, agency and number on the left; national name, motto, place and date on the
/// right (Nghị định 30/2020, Phụ lục I, ô số 1 to 4).
fn header_block(writer: &mut Writer, report: &Consolidated) {
    let header = &report.header;
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
    writer.paragraph(
        Layout::center(),
        &[(&header.parent_agency.to_uppercase(), Style::plain(SIZE_12))],
    );
    writer.paragraph(
        Layout::center(),
        &[(&header.agency.to_uppercase(), Style::bold(SIZE_12))],
    );
    // One third of the width of the agency's line.
    writer.rule(left_room, 1_400);
    writer.cell_end();
    writer.cell_start(HEADER_RIGHT, "top");
    writer.paragraph(
        Layout::center(),
        &[(vi::NATIONAL_NAME, Style::bold(SIZE_12))],
    );
    writer.paragraph(Layout::center(), &[(vi::MOTTO, Style::bold(SIZE_13))]);
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
        &[(&vi::number(&header.number), Style::plain(SIZE_13))],
    );
    writer.cell_end();
    writer.cell_start(HEADER_RIGHT, "top");
    writer.paragraph(
        spaced,
        &[(
            &vi::place_date(&header.place, header.date),
            Style::italic(SIZE_14),
        )],
    );
    writer.cell_end();
    writer.row_end();
    writer.table_end();
}

/// Kind of document, abstract with a rule under it, addressee (ô số 5 and 9a).
fn title_block(writer: &mut Writer, report: &Consolidated) {
    writer.paragraph(
        Layout {
            before: 360,
            keep_next: true,
            ..Layout::center()
        },
        &[(vi::DOCUMENT_KIND, Style::bold(SIZE_14))],
    );
    writer.paragraph(
        Layout {
            keep_next: true,
            ..Layout::center()
        },
        &[(&vi::title(report), Style::bold(SIZE_14))],
    );
    writer.rule(TEXT_WIDTH, 2_400);
    writer.paragraph(
        Layout {
            before: 240,
            after: 240,
            ..Layout::center()
        },
        &[(
            &vi::addressee(&report.header.addressee),
            Style::plain(SIZE_14),
        )],
    );
}

/// Widths of the summary table's columns: number, name, nine figures.
fn summary_widths() -> Vec<u32> {
    let mut widths = vec![560, 1_995];
    widths.extend([755; 9]);
    widths
}

/// Left and right padding of the summary table's cells, narrower than the default so that
/// `99,36` and the headings' words fit their columns at 11 pt.
const SUMMARY_PADDING: u32 = 72;

fn summary_table(writer: &mut Writer, report: &Consolidated) {
    writer.paragraph(
        Layout {
            before: 240,
            after: 120,
            keep_next: true,
            ..Layout::center()
        },
        &[(vi::TABLE_CAPTION, Style::bold(SIZE_14))],
    );
    let widths = summary_widths();
    writer.table_start(&widths, true, 0, SUMMARY_PADDING);
    writer.row_start(true);
    for (heading, width) in vi::TABLE_HEADINGS.iter().zip(&widths) {
        writer.cell_start(*width, "center");
        writer.paragraph(Layout::center(), &[(heading, Style::bold(SIZE_11))]);
        writer.cell_end();
    }
    writer.row_end();
    for (number, district) in (1..).zip(&report.districts) {
        summary_row(writer, &widths, &number.to_string(), district, false);
    }
    summary_row(writer, &widths, "", &report.province, true);
    writer.table_end();
    writer.paragraph(
        Layout {
            align: Align::Left,
            before: 60,
            after: 120,
            ..Layout::center()
        },
        &[(&vi::source_note(report), Style::italic(SIZE_12))],
    );
}

fn summary_row(
    writer: &mut Writer,
    widths: &[u32],
    number: &str,
    rate: &DistrictRate,
    total: bool,
) {
    let style = if total {
        Style::bold(SIZE_11)
    } else {
        Style::plain(SIZE_11)
    };
    // The headings say "(%)", so the cells carry the number only.
    let percent_or_blank = |share: Option<f64>, places| {
        share.map_or_else(String::new, |share| vi::decimal(share * 100.0, places))
    };
    let cells = [
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
    ];
    writer.row_start(false);
    for (index, (text, width)) in cells.iter().zip(widths).enumerate() {
        writer.cell_start(*width, "center");
        let align = if index == 1 {
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

/// "Nơi nhận" on the left; authority, title, room to sign and name on the right (ô số 7, 9b).
fn signature_block(writer: &mut Writer, report: &Consolidated) {
    let header = &report.header;
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
            vi::RECIPIENTS,
            Style {
                bold: true,
                italic: true,
                size: SIZE_12,
            },
        )],
    );
    for recipient in &header.recipients {
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
    for line in header.signer_title.lines() {
        writer.paragraph(signer, &[(&line.to_uppercase(), Style::bold(SIZE_14))]);
        signer.before = 0;
    }
    // Room for the signature and the seal.
    for _ in 0..4 {
        writer.paragraph(Layout::center(), &[("", Style::plain(SIZE_14))]);
    }
    writer.paragraph(
        Layout::center(),
        &[(&header.signer_name, Style::bold(SIZE_14))],
    );
    writer.cell_end();

    writer.row_end();
    writer.table_end();
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::consolidate::example;

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
