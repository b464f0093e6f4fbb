//! CPU time and memory of another process on this machine, from Linux's `/proc`.
//!
//! `/proc/PID/stat` gives the process's user and system CPU time (`utime`, `stime`, fields 14
//! and 15) in clock ticks; the tick rate is the kernel's `USER_HZ`, which the kernel hands every
//! process in its auxiliary vector (`AT_CLKTCK`, what `sysconf(_SC_CLK_TCK)` and `getconf
//! CLK_TCK` return; 100 on Linux). Reading it from `/proc/self/auxv` keeps this crate free of a
//! libc dependency.

use std::path::PathBuf;

use anyhow::{bail, Context};

/// `AT_CLKTCK` in the auxiliary vector (linux/auxvec.h).
const AT_CLKTCK: u64 = 17;

/// The user and system CPU time of `pid` so far, in clock ticks. Fails (never returns 0) if
/// the process's stat file cannot be read or parsed.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = stat_path(pid);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is {pid} the node's process id, on this machine, and still \
             running?)",
            path.display()
        )
    })?;
    parse_cpu_ticks(&text).with_context(|| format!("cannot parse {}", path.display()))
}

/// `utime + stime` from the text of a `/proc/PID/stat` file.
fn parse_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    // The command name (field 2) is in parentheses and may itself hold spaces or ')': the
    // fixed fields start after the last ')'.
    let rest = match stat.rfind(')') {
        Some(end) => &stat[end + 1..],
        None => bail!("no ')' after the command name"),
    };
    // rest = " state ppid ...": field 3 (state) is index 0, so field n is index n - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        let text = fields
            .get(n - 3)
            .with_context(|| format!("only {} fields, field {n} missing", fields.len() + 2))?;
        text.parse()
            .with_context(|| format!("field {n} is not a number: {text:?}"))
    };
    Ok(field(14)? + field(15)?)
}

/// The process's command name (`/proc/PID/comm`), if readable.
pub fn command_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The process's resident set size in MiB (`VmRSS` of `/proc/PID/status`), if readable.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss_kib(&status).map(|kib| kib as f64 / 1024.0)
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Clock ticks per second of the CPU times in `/proc` (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks_per_second() -> anyhow::Result<u64> {
    let auxv = std::fs::read("/proc/self/auxv")
        .context("cannot read /proc/self/auxv for the clock tick rate (CLK_TCK)")?;
    match parse_auxv(&auxv, AT_CLKTCK) {
        Some(0) | None => bail!("the auxiliary vector has no clock tick rate (AT_CLKTCK)"),
        Some(hz) => Ok(hz),
    }
}

/// The value of `key` in an auxiliary vector: native-endian (key, value) pairs of machine
/// words, ended by key 0.
fn parse_auxv(auxv: &[u8], key: u64) -> Option<u64> {
    const W: usize = std::mem::size_of::<usize>();
    let word = |b: &[u8]| {
        let mut a = [0u8; W];
        a.copy_from_slice(b);
        usize::from_ne_bytes(a) as u64
    };
    auxv.chunks_exact(2 * W)
        .map(|pair| (word(&pair[..W]), word(&pair[W..])))
        .take_while(|&(k, _)| k != 0)
        .find(|&(k, _)| k == key)
        .map(|(_, v)| v)
}

fn stat_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/stat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_even_with_odd_command_names() {
        // Fields 14 and 15 are 1500 and 250.
        let stat = "4242 (rollup) node) S 1 4242 4242 0 -1 4194560 9000 0 3 0 1500 250 0 0 20 0 \
                    12 0 777 123456 789 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 1750);
        assert!(parse_cpu_ticks("4242 (x) S 1 2").is_err());
        assert!(parse_cpu_ticks("garbage").is_err());
    }

    #[test]
    fn reads_this_process() {
        // Burn a little CPU so the count is not trivially zero on a fresh process.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let pid = std::process::id();
        cpu_ticks(pid).unwrap();
        assert!(rss_mib(pid).unwrap() > 0.0);
        assert!(command_name(pid).is_some());
        // Linux's USER_HZ is 100 everywhere in practice.
        let hz = clock_ticks_per_second().unwrap();
        assert!((10..=10_000).contains(&hz), "{hz}");
    }

    #[test]
    fn a_missing_process_is_an_error_that_names_the_file() {
        // PIDs are at most 2^22 on Linux.
        let err = cpu_ticks(u32::MAX).unwrap_err();
        assert!(
            format!("{err:#}").contains(&format!("/proc/{}/stat", u32::MAX)),
            "{err:#}"
        );
    }

    #[test]
    fn parses_rss_and_auxv() {
        assert_eq!(parse_rss_kib("Name:\tx\nVmRSS:\t  2048 kB\n"), Some(2048));
        assert_eq!(parse_rss_kib("Name:\tx\n"), None);
        let mut auxv = Vec::new();
        for (k, v) in [(6u64, 4096u64), (17, 100), (0, 0), (17, 5)] {
            auxv.extend_from_slice(&(k as usize).to_ne_bytes());
            auxv.extend_from_slice(&(v as usize).to_ne_bytes());
        }
        assert_eq!(parse_auxv(&auxv, 17), Some(100));
        assert_eq!(parse_auxv(&auxv, 6), Some(4096));
        assert_eq!(parse_auxv(&auxv, 33), None);
    }
}
