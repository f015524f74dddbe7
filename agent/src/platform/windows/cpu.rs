//! CPU use on Windows from `GetSystemTimes` (idle, kernel and user time of all processors since
//! boot), measured between two samples. sysinfo measures it through performance counters (PDH),
//! which break when the counter registry is damaged or, under Wine, abort the process
//! (`PdhEnumObjectsA` is not implemented); the system times need none of that. Windows has no
//! load average: it is reported as absent, as sysinfo's emulation would need PDH too.

#![allow(unsafe_code)]

use sysinfo::{CpuRefreshKind, System};
use windows_sys::Win32::Foundation::FILETIME;
use windows_sys::Win32::System::Threading::GetSystemTimes;

/// Measures CPU use between two samples.
#[derive(Debug)]
pub struct CpuMeter {
    /// Idle and busy+idle time (100 ns units) at the previous sample.
    last: Option<(u64, u64)>,
}

impl CpuMeter {
    /// Takes the baseline the first sample measures from, and lists the processors.
    pub fn new(system: &mut System) -> CpuMeter {
        system.refresh_cpu_list(CpuRefreshKind::nothing());
        CpuMeter { last: times() }
    }

    /// The number of processors and the share of time they were busy since the last sample, in
    /// percent (0 when the times cannot be read).
    pub fn sample(&mut self, system: &mut System) -> (usize, f32) {
        let now = times();
        let usage = match (self.last, now) {
            (Some(last), Some(now)) => busy_percent(last, now),
            _ => 0.0,
        };
        self.last = now;
        (system.cpus().len(), usage)
    }
}

/// Windows has no load average.
pub fn load_average() -> [f64; 3] {
    [0.0; 3]
}

/// Idle and total (kernel, which includes idle, plus user) time of all processors.
fn times() -> Option<(u64, u64)> {
    let (mut idle, mut kernel, mut user) = (
        FILETIME::default(),
        FILETIME::default(),
        FILETIME::default(),
    );
    // SAFETY: three valid out-pointers to FILETIME.
    let ok = unsafe { GetSystemTimes(&mut idle, &mut kernel, &mut user) };
    let value =
        |time: FILETIME| u64::from(time.dwHighDateTime) << 32 | u64::from(time.dwLowDateTime);
    (ok != 0).then(|| (value(idle), value(kernel) + value(user)))
}

/// Busy share between two `(idle, total)` readings, in percent.
fn busy_percent((idle_before, total_before): (u64, u64), (idle_now, total_now): (u64, u64)) -> f32 {
    let total = total_now.saturating_sub(total_before);
    let idle = idle_now.saturating_sub(idle_before).min(total);
    if total == 0 {
        return 0.0;
    }
    ((total - idle) as f64 * 100.0 / total as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_between_two_readings() {
        assert_eq!(busy_percent((0, 0), (750, 1000)), 25.0);
        assert_eq!(busy_percent((100, 100), (100, 100)), 0.0);
        assert_eq!(
            busy_percent((0, 0), (2000, 1000)),
            0.0,
            "idle never above total"
        );
        assert!(times().is_some(), "GetSystemTimes answers");
        let mut system = System::new();
        let mut meter = CpuMeter::new(&mut system);
        let (cpus, usage) = meter.sample(&mut system);
        assert!(
            cpus >= 1 && (0.0..=100.0).contains(&usage),
            "{cpus} {usage}"
        );
    }
}
