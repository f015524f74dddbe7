//! Keeping the state folder and private files from other users on Windows: a protected DACL
//! ([`crate::platform::PRIVATE_SDDL`]: SYSTEM and Administrators, full control, inherited by
//! everything inside; nothing inherited from `%ProgramData%`, whose default lets every user read
//! and create). Files created in the folder inherit it; private files get it again explicitly,
//! so a file written elsewhere (a test's folder, a state folder named in the config) is
//! protected too.
//!
//! Reading back goes through SDDL as well, so the check is the pure
//! [`crate::platform::sddl_is_private`].

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::ptr;

use windows_sys::Win32::Foundation::{LocalFree, ERROR_SUCCESS};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW,
    SetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    GetSecurityDescriptorDacl, ACL, DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR,
};

use super::wide;
use crate::platform::{sddl_is_private, PRIVATE_SDDL};

/// Gives `path` (a folder or a file) the protected DACL of SYSTEM and Administrators only.
///
/// # Errors
///
/// When the descriptor cannot be built or set (the caller lacks `WRITE_DAC`).
fn protect(path: &Path) -> io::Result<()> {
    let sddl = wide(PRIVATE_SDDL.as_ref());
    let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: `sddl` is NUL-terminated and outlives the call; on success the system allocates
    // `descriptor`, which is freed with LocalFree below.
    let built = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl.as_ptr(),
            SDDL_REVISION_1,
            &mut descriptor,
            ptr::null_mut(),
        )
    };
    if built == 0 {
        return Err(io::Error::last_os_error());
    }
    let res = set_dacl(path, descriptor);
    // SAFETY: `descriptor` came from the system's allocator (LocalAlloc) and is freed once.
    unsafe { LocalFree(descriptor) };
    res
}

/// Sets the DACL found in `descriptor` on `path`, marked protected (no inheritance from above).
fn set_dacl(path: &Path, descriptor: PSECURITY_DESCRIPTOR) -> io::Result<()> {
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = ptr::null_mut();
    // SAFETY: `descriptor` is a valid descriptor built from SDDL; `dacl` points into it and is
    // used only while it lives.
    let found =
        unsafe { GetSecurityDescriptorDacl(descriptor, &mut present, &mut dacl, &mut defaulted) };
    if found == 0 {
        return Err(io::Error::last_os_error());
    }
    let name = wide(path.as_os_str());
    // SAFETY: `name` is NUL-terminated; the owner, group and SACL are not changed (null).
    let status = unsafe {
        SetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            dacl,
            ptr::null(),
        )
    };
    match status {
        ERROR_SUCCESS => Ok(()),
        code => Err(io::Error::from_raw_os_error(code as i32)),
    }
}

/// The DACL of `path` in SDDL.
///
/// # Errors
///
/// When the security information cannot be read.
pub(crate) fn dacl_sddl(path: &Path) -> io::Result<String> {
    let name = wide(path.as_os_str());
    let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; on success the system allocates `descriptor`, freed
    // below; the other out-pointers are not asked for.
    let status = unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut descriptor,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    let mut text: *mut u16 = ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: `descriptor` is valid; on success `text` is a system-allocated string of `len`
    // UTF-16 units (with its NUL), freed below.
    let converted = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            descriptor,
            SDDL_REVISION_1,
            DACL_SECURITY_INFORMATION,
            &mut text,
            &mut len,
        )
    };
    let res = if converted == 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: the system wrote `len` units at `text`; the NUL is dropped.
        let units = unsafe { std::slice::from_raw_parts(text, len as usize) };
        let units = units.strip_suffix(&[0]).unwrap_or(units);
        let sddl = String::from_utf16_lossy(units);
        // SAFETY: `text` came from LocalAlloc and is freed once.
        unsafe { LocalFree(text.cast()) };
        Ok(sddl)
    };
    // SAFETY: `descriptor` came from LocalAlloc and is freed once.
    unsafe { LocalFree(descriptor) };
    res
}

/// Protects `dir` so only SYSTEM and the Administrators may open it or anything inside.
///
/// # Errors
///
/// When the access list cannot be set.
pub fn restrict_dir(dir: &Path) -> io::Result<()> {
    protect(dir)
}

/// Creates (or truncates) `path` for writing; a `private` file gets the protected DACL before
/// anything is written to it.
///
/// # Errors
///
/// When the file cannot be created or protected.
pub fn create_file(path: &Path, private: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    if private {
        protect(path)?;
    }
    Ok(file)
}

/// Why the private file at `path` may be read by other users, with the command that fixes it;
/// `None` when only SYSTEM and the Administrators may, or it cannot be examined.
pub fn privacy_problem(path: &Path) -> Option<String> {
    let sddl = dacl_sddl(path).ok()?;
    (!sddl_is_private(&sddl)).then(|| {
        format!(
            "its access list {sddl} lets other users in; run as administrator: \
             icacls \"{}\" /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs on the Windows target: the folder and a private file end with the protected DACL,
    /// and a fresh file elsewhere does not pass as private. Wine (`scripts/test`) accepts the
    /// calls but keeps no access list on files (it reads back one made from the Unix mode), so
    /// there only the calls and the reading are checked.
    #[test]
    fn state_folder_and_private_files_are_protected() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open.txt");
        std::fs::write(&open, "x").unwrap();
        let before = dacl_sddl(&open).unwrap();
        assert!(before.starts_with("D:"), "{before}");
        assert!(
            !sddl_is_private(&before),
            "a temp file is not private: {before}"
        );
        assert!(privacy_problem(&open).unwrap().contains("icacls"));

        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        restrict_dir(&state).unwrap();
        let secret = state.join("credential.json");
        drop(create_file(&secret, true).unwrap());
        let (folder, file) = (dacl_sddl(&state).unwrap(), dacl_sddl(&secret).unwrap());
        if super::super::under_wine() {
            eprintln!(
                "under Wine: access lists set without error but not kept (folder reads {folder})"
            );
            return;
        }
        assert!(
            sddl_is_private(&folder) && folder.starts_with("D:P"),
            "{folder}"
        );
        assert!(sddl_is_private(&file), "{file}");
        assert_eq!(privacy_problem(&secret), None);
    }
}
