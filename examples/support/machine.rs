//! What the benchmark and the memory run read about the machine and the worker process.

/// A `/proc/<pid>/status` field (e.g. `VmHWM:`, `VmRSS:`), in KiB; 0 when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Cores, CPU model and memory, for the report.
pub fn describe() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem} RAM")
}

/// Busy and total CPU time of the whole machine so far, in clock ticks (`/proc/stat`):
/// busy is everything but idle and I/O wait.
pub fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|l| l.split_whitespace().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// CPU time a process has used so far (user + system, `/proc/<pid>/stat`), in clock ticks;
/// 0 when unreadable.
pub fn process_ticks(pid: u32) -> u64 {
    stat_ticks(pid).map_or(0, |(_, own, _)| own)
}

/// CPU time of every process named `name` (e.g. `postgres`, `beam.smp`), in clock ticks:
/// their own (user + system) and that of their children that have exited and been waited
/// for, so that backends which come and go between two readings are counted too.
pub fn ticks_of(name: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat_ticks)
        .filter(|(comm, _, _)| comm == name)
        .map(|(_, own, children)| own + children)
        .sum()
}

/// CPU time of this process's children that have exited and been waited for, in clock
/// ticks (`/proc/self/stat`).
pub fn waited_children_ticks() -> u64 {
    stat_ticks(std::process::id()).map_or(0, |(_, _, children)| children)
}

/// A process's command name, its own CPU time (user + system) and its waited-for
/// children's (`/proc/<pid>/stat`, in clock ticks).
fn stat_ticks(pid: u32) -> Option<(String, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<u64> = rest.split_whitespace().skip(11).take(4).filter_map(|v| v.parse().ok()).collect();
    let [utime, stime, cutime, cstime] = fields[..] else { return None };
    Some((comm, utime + stime, cutime + cstime))
}
