//! The consolidated provincial report's documents (issue 6, item 6) opened by other software: the
//! DOCX converted to PDF by a real LibreOffice (headless) and read back with poppler's
//! `pdftotext`, `pdfinfo` and `pdffonts`; the XLSX read back with calamine, cell by cell.
//!
//! `scripts/test` installs LibreOffice Writer, poppler-utils and the Liberation fonts version 2
//! (metric copies of Times New Roman with every Vietnamese letter) when they are missing. `CNTT_TEST_KEEP_DOCUMENTS=DIR` keeps the DOCX
//! and its PDF in `DIR` to look at.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use calamine::{open_workbook, Data, Reader, Xlsx};
use cntt_collector::documents::consolidate::{self, Consolidated, SubmissionState};
use time::macros::date;

/// A cold LibreOffice start with a fresh profile takes tens of seconds on a busy machine.
const CONVERSION_TIMEOUT: Duration = Duration::from_secs(240);

const HOW_TO_INSTALL: &str = "run scripts/test, which installs them, or: apt-get install -y \
     --no-install-recommends libreoffice-writer-nogui poppler-utils fonts-liberation2";

fn write_documents(report: &Consolidated, dir: &Path) -> (PathBuf, PathBuf) {
    let docx = dir.join("bao-cao-tong-hop-2026-Q4.docx");
    let xlsx = dir.join("bao-cao-tong-hop-2026-Q4.xlsx");
    std::fs::write(&docx, consolidate::docx(report).unwrap()).unwrap();
    std::fs::write(&xlsx, consolidate::xlsx(report).unwrap()).unwrap();
    (docx, xlsx)
}

/// Runs `program` to completion, killing it after `timeout`.
fn run(program: &str, args: &[&str], timeout: Duration) -> Output {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {program} ({err}): {HOW_TO_INSTALL}"));
    let id = child.id();
    let started = Instant::now();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(timeout) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // Only the child this test started, by its id.
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
            panic!(
                "{program} {args:?} did not finish within {:?}",
                started.elapsed()
            );
        }
    }
}

pub(super) fn stdout_of(program: &str, args: &[&str]) -> String {
    let output = run(program, args, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Converts `docx` to a PDF in `out` with LibreOffice, in a private profile so that parallel
/// runs (other tests, other engineers) do not share one.
pub(super) fn convert_to_pdf(docx: &Path, out: &Path, profile: &Path) -> PathBuf {
    let profile = format!("-env:UserInstallation=file://{}", profile.display());
    let args = [
        profile.as_str(),
        "--headless",
        "--norestore",
        "--nolockcheck",
        "--convert-to",
        "pdf",
        "--outdir",
        out.to_str().unwrap(),
        docx.to_str().unwrap(),
    ];
    let output = run("soffice", &args, CONVERSION_TIMEOUT);
    let pdf = out.join(docx.with_extension("pdf").file_name().unwrap());
    assert!(
        output.status.success() && pdf.exists(),
        "LibreOffice did not convert {} ({}):\nstdout: {}\nstderr: {}",
        docx.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    pdf
}

/// The text without any whitespace: pdftotext splits wrapped lines and table cells, and in
/// justified lines it may see a gap inside a word ("đ ơn v ị"), so comparisons ignore spacing.
pub(super) fn squashed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn docx_opens_in_libreoffice_as_a_decree_30_report() {
    let report = consolidate::example();
    let dir = tempfile::tempdir().unwrap();
    let (docx, _) = write_documents(&report, dir.path());
    let out = dir.path().join("pdf");
    std::fs::create_dir(&out).unwrap();
    let pdf = convert_to_pdf(&docx, &out, &dir.path().join("libreoffice-profile"));
    // For a look with one's own eyes: CNTT_TEST_KEEP_DOCUMENTS=DIR keeps the DOCX and the PDF.
    if let Some(keep) = std::env::var_os("CNTT_TEST_KEEP_DOCUMENTS") {
        for file in [&docx, &pdf] {
            std::fs::copy(file, Path::new(&keep).join(file.file_name().unwrap())).unwrap();
        }
    }

    let text = stdout_of("pdftotext", &["-enc", "UTF-8", pdf.to_str().unwrap(), "-"]);
    let squashed_text = squashed(&text);
    for expected in [
        "UBND TỈNH LÂM ĐỒNG",
        "SỞ KHOA HỌC VÀ CÔNG NGHỆ",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Số: ……/BC-SKHCN",
        "Lâm Đồng, ngày 15 tháng 12 năm 2026",
        "BÁO CÁO",
        "Tổng hợp tình hình ứng dụng CNTT quý IV năm 2026",
        "Kính gửi: Ủy ban nhân dân tỉnh.",
        "I. TÌNH HÌNH THỰC HIỆN CHẾ ĐỘ BÁO CÁO ĐỊNH KỲ",
        "IV. ĐÁNH GIÁ CHUNG VÀ ĐỀ XUẤT",
        "Các đơn vị chưa nộp báo cáo (2 đơn vị): Sở Giáo dục và Đào tạo (Khối sở, ban, ngành); \
         UBND xã Đắk Wil (Huyện Cư Jút).",
        "UBND huyện Cư Jút (Huyện Cư Jút), nộp lúc 08:15 12/12/2026",
        "Sở Y tế (cán bộ: Lê Minh Châu): trình độ tiếng Anh chưa đạt bậc B;",
        "Toàn tỉnh",
        "Nơi nhận:",
        "- Lưu: VT, CNTT.",
        "PHÓ GIÁM ĐỐC",
        "Nguyễn Văn Bình",
    ] {
        assert!(
            squashed_text.contains(&squashed(expected)),
            "{expected:?} in the PDF:\n{text}"
        );
    }

    let info = stdout_of("pdfinfo", &[pdf.to_str().unwrap()]);
    assert!(
        info.lines()
            .any(|line| line.starts_with("Page size:") && line.contains("(A4)")),
        "A4 pages: {info}"
    );
    let pages: u32 = info
        .lines()
        .find_map(|line| line.strip_prefix("Pages:"))
        .and_then(|pages| pages.trim().parse().ok())
        .unwrap_or_else(|| panic!("page count in {info}"));
    assert!((2..=6).contains(&pages), "{pages} pages");

    // Every font LibreOffice used is Times New Roman or its metric copy (Liberation Serif): no
    // letter fell back to another font for want of a Vietnamese glyph.
    let fonts = stdout_of("pdffonts", &[pdf.to_str().unwrap()]);
    let names: Vec<&str> = fonts
        .lines()
        .skip(2)
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(!names.is_empty(), "{fonts}");
    for name in names {
        assert!(
            name.contains("TimesNewRoman") || name.contains("LiberationSerif"),
            "font {name} is not Times New Roman nor a metric copy ({HOW_TO_INSTALL}):\n{fonts}"
        );
    }
}

/// The spreadsheet serial number of a date and time (days since 30/12/1899).
fn serial(day: time::Date, hour: u8, minute: u8) -> f64 {
    let days = (day - date!(1899 - 12 - 30)).whole_days();
    days as f64 + (f64::from(hour) * 60.0 + f64::from(minute)) / 1440.0
}

#[test]
fn xlsx_reads_back_with_one_row_per_unit_and_numbers_as_numbers() {
    let report = consolidate::example();
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = write_documents(&report, dir.path());
    let mut workbook: Xlsx<_> = open_workbook(&path).unwrap();
    assert_eq!(workbook.sheet_names(), ["Đơn vị", "Tổng hợp"]);

    let units = workbook.worksheet_range("Đơn vị").unwrap();
    let rows: Vec<&[Data]> = units.rows().collect();
    assert_eq!(
        rows[0][0],
        Data::String("Phụ lục kèm theo Báo cáo số ……/BC-SKHCN ngày 15/12/2026".into())
    );
    assert_eq!(
        rows[1][0],
        Data::String("TỔNG HỢP TÌNH HÌNH ỨNG DỤNG CNTT QUÝ IV NĂM 2026".into())
    );
    let headings: Vec<String> = rows[3].iter().map(ToString::to_string).collect();
    let column = |name: &str| {
        headings
            .iter()
            .position(|heading| heading == name)
            .unwrap_or_else(|| panic!("column {name} in {headings:?}"))
    };
    let (data, totals) = rows[4..].split_at(rows.len() - 5);
    assert_eq!(totals[0][2].to_string(), "Tổng cộng");
    assert_eq!(totals[0][column("Số sự cố")], Data::Float(19.0));
    assert_eq!(data.len(), 11, "one row per unit");
    assert_eq!(data.len(), report.rows.len());
    let codes: Vec<String> = data
        .iter()
        .map(|row| row[column("Mã đơn vị")].to_string())
        .collect();
    assert_eq!(
        codes,
        [
            "67.S.VPUB",
            "67.S.TC",
            "67.S.YT",
            "67.S.GDDT",
            "660",
            "24611",
            "24614",
            "662",
            "24643",
            "663",
            "24664"
        ]
    );
    let states: Vec<String> = data
        .iter()
        .map(|row| row[column("Trạng thái nộp")].to_string())
        .collect();
    assert_eq!(
        states,
        [
            "Đúng hạn",
            "Đúng hạn",
            "Trễ hạn",
            "Chưa nộp",
            "Đúng hạn",
            "Đúng hạn",
            "Không phải nộp",
            "Trễ hạn",
            "Chưa nộp",
            "Đúng hạn",
            "Chưa đến hạn"
        ]
    );
    for (row, unit) in data.iter().zip(&report.rows) {
        assert_eq!(
            row[column("Trạng thái nộp")].to_string(),
            unit.state.label()
        );
    }
    assert_eq!(report.rows[6].state, SubmissionState::NotRequired);

    // Sở Tài chính: WAN availability a number (99,69%), submission time a date-time
    // in Vietnam time, incidents by kind.
    let khcn = data[1];
    assert_eq!(khcn[column("Khả dụng WAN (%)")], Data::Float(0.9969));
    let at = match &khcn[column("Thời điểm nộp")] {
        Data::DateTime(at) => at.as_f64(),
        other => panic!("a date-time, not {other:?}"),
    };
    assert!(
        (at - serial(date!(2026 - 12 - 08), 16, 40)).abs() < 1e-6,
        "{at}"
    );
    assert_eq!(khcn[column("Số lần nộp")], Data::Float(2.0));
    assert_eq!(khcn[column("Sự cố An toàn thông tin")], Data::Float(1.0));
    assert_eq!(khcn[column("Số sự cố")], Data::Float(3.0));
    // Unmeasured figures are empty cells, not text.
    let dak_wil = data[8];
    assert_eq!(dak_wil[column("Khả dụng LAN (%)")], Data::Empty);
    assert_eq!(dak_wil[column("Đạt chuẩn")].to_string(), "Chưa đạt");
    assert_eq!(
        data[3][column("Lý do chưa đạt")].to_string(),
        "Chưa có cán bộ chuyên trách CNTT được đăng ký"
    );

    let summary = workbook.worksheet_range("Tổng hợp").unwrap();
    let rows: Vec<&[Data]> = summary.rows().collect();
    let headings: Vec<String> = rows[3].iter().map(ToString::to_string).collect();
    let rate = headings.iter().position(|h| h == "Tỷ lệ nộp (%)").unwrap();
    let names: Vec<String> = rows[4..].iter().map(|row| row[1].to_string()).collect();
    assert_eq!(
        names,
        [
            "Khối sở, ban, ngành",
            "Thành phố Gia Nghĩa",
            "Huyện Cư Jút",
            "Huyện Đắk Mil",
            "Toàn tỉnh"
        ]
    );
    let province = rows.last().unwrap();
    assert_eq!(province[rate], Data::Float(0.7));
    assert_eq!(province[2], Data::Float(10.0), "required");
    let departments = rows[4];
    assert_eq!(departments[rate], Data::Float(0.75));
}
