//! Windows 10/11 and Server 2016+: state under `%ProgramData%`, protected access lists instead of
//! modes (`acl.rs`), CPU use from the system times (`cpu.rs`), the routing table from iphlpapi (`gateway.rs`), ICMP echo through `icmp.dll`
//! without administrator rights (`icmp.rs`), and the Windows service (`service.rs`, with the
//! enrollment settings an MSI leaves in the registry, `registry.rs`).
//!
//! Only these files call Win32 directly, so only they allow `unsafe`; each call says what it
//! relies on.

mod acl;
mod cpu;
mod gateway;
mod icmp;
mod registry;
pub mod service;

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use acl::{create_file, privacy_problem, restrict_dir};
pub use cpu::{load_average, CpuMeter};
pub use gateway::default_gateway;
pub use icmp::system_ping;

/// Whether the system offers an ICMP echo service usable without privileges: `icmp.dll`'s
/// `IcmpSendEcho2`, which any user may call (raw sockets need an administrator).
pub const SYSTEM_ICMP: bool = true;

/// `%ProgramData%\cntt-agent`, where the config, state and logs live. The folder comes from the
/// shell's known folder, not the environment: a service and a console must agree on it, and
/// their environments may differ (under Wine the service's `ProgramData` is another folder).
fn program_data() -> PathBuf {
    known_program_data()
        .or_else(|| std::env::var_os("ProgramData").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("C:\\ProgramData"))
        .join("cntt-agent")
}

/// `FOLDERID_ProgramData` from the shell.
#[allow(unsafe_code)]
fn known_program_data() -> Option<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::{FOLDERID_ProgramData, SHGetKnownFolderPath};
    let mut path: *mut u16 = std::ptr::null_mut();
    // SAFETY: a valid folder id and out-pointer; the returned string is freed with CoTaskMemFree
    // whatever the result, as the documentation asks.
    let res =
        unsafe { SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, std::ptr::null_mut(), &mut path) };
    let folder = (res == 0 && !path.is_null()).then(|| {
        // SAFETY: on success `path` is a NUL-terminated UTF-16 string.
        let len = (0..).take_while(|&i| unsafe { *path.add(i) } != 0).count();
        // SAFETY: `len` units before the NUL were just read.
        let units = unsafe { std::slice::from_raw_parts(path, len) };
        PathBuf::from(std::ffi::OsString::from_wide(units))
    });
    // SAFETY: allocated by the shell (or null, which CoTaskMemFree accepts).
    unsafe { CoTaskMemFree(path.cast()) };
    folder
}

/// The config file read when `--config` is not given: `%ProgramData%\cntt-agent\agent.toml`.
pub fn default_config_path() -> PathBuf {
    program_data().join("agent.toml")
}

/// The state folder used when the config names none: `%ProgramData%\cntt-agent\state`.
pub fn default_state_dir() -> PathBuf {
    program_data().join("state")
}

/// Does nothing: Windows cannot open a folder for flushing through the standard library, and
/// NTFS journals the creation, deletion and renaming of files itself.
///
/// # Errors
///
/// Never.
pub fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// `text` as a NUL-terminated UTF-16 string for Win32.
fn wide(text: &OsStr) -> Vec<u16> {
    text.encode_wide().chain(std::iter::once(0)).collect()
}

/// Whether this process runs under Wine (its ntdll exports `wine_get_version`), for the tests of
/// what Wine does not do (file access lists).
#[cfg(test)]
#[allow(unsafe_code)]
pub(crate) fn under_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let ntdll = wide(OsStr::new("ntdll.dll"));
    // SAFETY: NUL-terminated names; ntdll is loaded in every process and never unloaded.
    unsafe {
        let module = GetModuleHandleW(ntdll.as_ptr());
        !module.is_null() && GetProcAddress(module, c"wine_get_version".as_ptr().cast()).is_some()
    }
}
