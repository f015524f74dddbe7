//! The enrollment settings an MSI install leaves for the service: `COLLECTOR_URL`, `CA_FILE` and
//! `ENROLL_TOKEN` written as the values `CollectorUrl`, `CaFile` and `EnrollToken` of
//! `HKLM\SOFTWARE\cntt-agent\Enrollment` (`packaging/windows/cntt-agent.wxs`). The service reads
//! them once, enrolls, and deletes the token value, so the one-time secret never sits in a
//! command line, a log or the registry for longer than the first start.

#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::path::PathBuf;
use std::ptr;

use cntt_common::Secret;
use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS};
use windows_sys::Win32::System::Registry::{
    RegDeleteKeyValueW, RegGetValueW, HKEY, HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ,
};

use super::wide;

/// The key the MSI writes, under `HKEY_LOCAL_MACHINE`.
pub(crate) const ENROLLMENT_KEY: &str = "SOFTWARE\\cntt-agent\\Enrollment";

/// What the MSI was given at install time.
#[derive(Debug)]
pub(crate) struct EnrollmentSettings {
    /// The collector's address.
    pub(crate) server: String,
    /// The collector's CA file on this machine.
    pub(crate) ca_file: PathBuf,
    /// The one-time enrollment token.
    pub(crate) token: Secret,
}

/// The settings in the registry, when all three values are there and not empty.
pub(crate) fn enrollment_settings() -> Option<EnrollmentSettings> {
    let value = |name: &str| read_string(HKEY_LOCAL_MACHINE, ENROLLMENT_KEY, name);
    let (server, ca_file, token) = (
        value("CollectorUrl")?,
        value("CaFile")?,
        value("EnrollToken")?,
    );
    Some(EnrollmentSettings {
        server,
        ca_file: PathBuf::from(ca_file),
        token: Secret::new(token),
    })
}

/// Deletes the token value once it has been used (or refused for good).
pub(crate) fn forget_token() {
    let key = wide(OsStr::new(ENROLLMENT_KEY));
    let name = wide(OsStr::new("EnrollToken"));
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let status = unsafe { RegDeleteKeyValueW(HKEY_LOCAL_MACHINE, key.as_ptr(), name.as_ptr()) };
    if status != ERROR_SUCCESS && status != ERROR_FILE_NOT_FOUND {
        tracing::warn!(
            status,
            key = ENROLLMENT_KEY,
            "cannot delete the enrollment token from the registry"
        );
    }
}

/// A non-empty `REG_SZ` value, `None` when missing, empty or not text.
fn read_string(root: HKEY, key: &str, name: &str) -> Option<String> {
    let key = wide(OsStr::new(key));
    let name = wide(OsStr::new(name));
    let mut buffer = vec![0u16; 1024];
    let mut size = (buffer.len() * 2) as u32;
    // SAFETY: strings are NUL-terminated; `buffer` holds `size` bytes; RRF_RT_REG_SZ makes the
    // system NUL-terminate the text it writes.
    let status = unsafe {
        RegGetValueW(
            root,
            key.as_ptr(),
            name.as_ptr(),
            RRF_RT_REG_SZ,
            ptr::null_mut(),
            buffer.as_mut_ptr().cast(),
            &mut size,
        )
    };
    if status != ERROR_SUCCESS {
        return None;
    }
    let units = &buffer[..(size as usize / 2).min(buffer.len())];
    let text = String::from_utf16_lossy(units.split(|unit| *unit == 0).next().unwrap_or(&[]));
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
