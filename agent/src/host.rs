//! Host health from sysinfo: reading the machine is kept apart from shaping the snapshot, so the
//! shaping can be tested with synthetic readings.
//!
//! Only technical facts leave the machine: names of the host and OS, counters, sizes and mount
//! points. Never file contents, document names, browsing or personal data.

use std::collections::HashSet;

use cntt_common::wire::{Disk, HostSnapshot, Interface};
use sysinfo::{Disks, Networks, System};

/// File systems that are not storage a person could fill (memory-backed or virtual).
const PSEUDO_FILE_SYSTEMS: [&str; 10] = [
    "tmpfs", "devtmpfs", "squashfs", "overlay", "proc", "sysfs", "cgroup", "cgroup2", "devfs",
    "ramfs",
];

/// Keeps sysinfo's state between samples; CPU use is measured between two refreshes.
#[derive(Debug)]
pub struct HostSampler {
    system: System,
    cpu: crate::platform::CpuMeter,
    disks: Disks,
    networks: Networks,
}

impl Default for HostSampler {
    fn default() -> HostSampler {
        let mut system = System::new();
        // The first CPU reading only sets the baseline; the next sample measures from here.
        let cpu = crate::platform::CpuMeter::new(&mut system);
        system.refresh_memory();
        HostSampler {
            system,
            cpu,
            disks: Disks::new_with_refreshed_list(),
            networks: Networks::new_with_refreshed_list(),
        }
    }
}

impl HostSampler {
    /// Reads the machine now.
    pub fn sample(&mut self) -> HostSnapshot {
        let (cpu_count, cpu_usage_percent) = self.cpu.sample(&mut self.system);
        self.system.refresh_memory();
        self.disks.refresh(true);
        self.networks.refresh(true);
        let reading = Reading {
            hostname: System::host_name().unwrap_or_default(),
            os_name: System::name().unwrap_or_default(),
            os_version: System::os_version().unwrap_or_default(),
            kernel_version: System::kernel_version().unwrap_or_default(),
            arch: System::cpu_arch(),
            uptime_seconds: System::uptime(),
            cpu_count,
            cpu_usage_percent,
            load_average: crate::platform::load_average(),
            memory_total_bytes: self.system.total_memory(),
            memory_used_bytes: self.system.used_memory(),
            swap_total_bytes: self.system.total_swap(),
            swap_used_bytes: self.system.used_swap(),
            disks: self
                .disks
                .list()
                .iter()
                .map(|disk| Disk {
                    mount_point: disk.mount_point().to_string_lossy().into_owned(),
                    file_system: disk.file_system().to_string_lossy().into_owned(),
                    total_bytes: disk.total_space(),
                    available_bytes: disk.available_space(),
                })
                .collect(),
            interfaces: self
                .networks
                .iter()
                .map(|(name, data)| Interface {
                    name: name.clone(),
                    rx_bytes: data.total_received(),
                    tx_bytes: data.total_transmitted(),
                    rx_errors: data.total_errors_on_received(),
                    tx_errors: data.total_errors_on_transmitted(),
                })
                .collect(),
        };
        snapshot(reading)
    }
}

/// Raw facts as read from the OS.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Host name.
    pub hostname: String,
    /// OS name.
    pub os_name: String,
    /// OS version.
    pub os_version: String,
    /// Kernel version.
    pub kernel_version: String,
    /// Architecture.
    pub arch: String,
    /// Seconds since boot.
    pub uptime_seconds: u64,
    /// Logical CPUs.
    pub cpu_count: usize,
    /// CPU use, 0–100.
    pub cpu_usage_percent: f32,
    /// Load averages; all zero where the OS has none (Windows).
    pub load_average: [f64; 3],
    /// Memory.
    pub memory_total_bytes: u64,
    /// Memory in use.
    pub memory_used_bytes: u64,
    /// Swap.
    pub swap_total_bytes: u64,
    /// Swap in use.
    pub swap_used_bytes: u64,
    /// Every mounted file system.
    pub disks: Vec<Disk>,
    /// Every network interface.
    pub interfaces: Vec<Interface>,
}

/// Shapes a reading into the wire snapshot: drops pseudo file systems, empty ones and repeated mount
/// points, and clamps CPU use into 0–100.
pub fn snapshot(reading: Reading) -> HostSnapshot {
    let mut seen = HashSet::new();
    let disks = reading
        .disks
        .into_iter()
        .filter(|disk| {
            disk.total_bytes > 0 && !PSEUDO_FILE_SYSTEMS.contains(&disk.file_system.as_str())
        })
        .filter(|disk| seen.insert(disk.mount_point.clone()))
        .collect();
    let has_load = reading.load_average.iter().any(|value| *value > 0.0);
    HostSnapshot {
        hostname: reading.hostname,
        os_name: reading.os_name,
        os_version: reading.os_version,
        kernel_version: reading.kernel_version,
        arch: reading.arch,
        uptime_seconds: reading.uptime_seconds,
        cpu_count: u32::try_from(reading.cpu_count).unwrap_or(u32::MAX),
        cpu_usage_percent: if reading.cpu_usage_percent.is_finite() {
            reading.cpu_usage_percent.clamp(0.0, 100.0)
        } else {
            0.0
        },
        load_average: has_load.then_some(reading.load_average),
        memory_total_bytes: reading.memory_total_bytes,
        memory_used_bytes: reading.memory_used_bytes.min(reading.memory_total_bytes),
        swap_total_bytes: reading.swap_total_bytes,
        swap_used_bytes: reading.swap_used_bytes.min(reading.swap_total_bytes),
        disks,
        interfaces: reading
            .interfaces
            .into_iter()
            .filter(|interface| interface.name != "lo")
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(mount_point: &str, file_system: &str, total_bytes: u64) -> Disk {
        Disk {
            mount_point: mount_point.into(),
            file_system: file_system.into(),
            total_bytes,
            available_bytes: total_bytes / 2,
        }
    }

    #[test]
    fn snapshot_keeps_real_disks_once_and_clamps() {
        let reading = Reading {
            hostname: "pc-01".into(),
            os_name: "Windows".into(),
            os_version: "10".into(),
            kernel_version: "19045".into(),
            arch: "x86_64".into(),
            uptime_seconds: 10,
            cpu_count: 4,
            cpu_usage_percent: f32::NAN,
            load_average: [0.0; 3],
            memory_total_bytes: 100,
            memory_used_bytes: 150,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            disks: vec![
                disk("/", "ext4", 10),
                disk("/run", "tmpfs", 10),
                disk("/", "ext4", 10),
                disk("/media/cd", "iso9660", 0),
            ],
            interfaces: vec![],
        };
        let snapshot = snapshot(reading);
        assert_eq!(snapshot.disks, vec![disk("/", "ext4", 10)]);
        assert_eq!(snapshot.cpu_usage_percent, 0.0);
        assert_eq!(snapshot.load_average, None, "no load average on Windows");
        assert_eq!(snapshot.memory_used_bytes, 100);
    }

    #[test]
    fn sampling_this_machine_gives_plausible_figures() {
        let snapshot = HostSampler::default().sample();
        assert!(snapshot.cpu_count >= 1);
        assert!(snapshot.memory_total_bytes > 0);
        assert!(!snapshot.hostname.is_empty());
    }
}
