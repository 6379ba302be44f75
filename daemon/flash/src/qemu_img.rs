//! Running `qemu-img` as a cancellable child: progress parsed from `-p`
//! output, stderr kept for the error, SIGTERM then SIGKILL on cancel.

use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::FlashError;
use crate::pipeline::POLL;

/// How long a child gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);

/// How a qemu-img run ended (it was not cancelled and did start).
pub(crate) struct Finished {
    /// Its exit code, if it exited (not killed by a signal).
    pub(crate) code: Option<i32>,
    status: String,
    /// stderr plus the last message line of stdout, trimmed.
    pub(crate) output: String,
}

impl Finished {
    /// `Ok` on exit status 0, else [`FlashError::QemuImg`].
    pub(crate) fn check(self, action: &'static str) -> Result<(), FlashError> {
        if self.code == Some(0) {
            return Ok(());
        }
        Err(FlashError::QemuImg {
            action,
            status: self.status,
            stderr: self.output,
        })
    }
}

/// A `qemu-img` command that inherits the descriptors `files` (same
/// numbers, close-on-exec cleared only in the child), so it opens
/// [`fd_path`] instead of a name: the image and target we opened and
/// checked, whatever the names point at by now.
pub(crate) fn command(files: &[&dyn AsRawFd]) -> Command {
    let mut cmd = Command::new("qemu-img");
    let fds: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the hook runs in the forked child before exec; it only makes
    // fcntl calls (async-signal-safe, no allocation) on descriptors the
    // caller keeps open until `spawn` has returned.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                // SAFETY: `fd` is open in the child (inherited by fork).
                let borrowed = BorrowedFd::borrow_raw(fd);
                rustix::io::fcntl_setfd(borrowed, rustix::io::FdFlags::empty())?;
            }
            Ok(())
        });
    }
    cmd
}

/// The name under which a child made by [`command`] opens `file`.
pub(crate) fn fd_path(file: &dyn AsRawFd) -> String {
    format!("/proc/self/fd/{}", file.as_raw_fd())
}

/// qemu-img option values double their commas.
pub(crate) fn escape(value: &str) -> String {
    value.replace(',', ",,")
}

/// `--image-opts` for the qcow2 image open as `file`: explicit drivers, so
/// nothing is probed and no protocol is parsed from a name.
pub(crate) fn qcow2_opts(file: &dyn AsRawFd) -> String {
    format!(
        "driver=qcow2,file.driver=file,file.filename={}",
        fd_path(file)
    )
}

/// Run a qemu-img command to its end or until `stop` ([`FlashError::Cancelled`]);
/// stdout is parsed for `(NN.NN/100%)` progress.
pub(crate) fn run(
    mut cmd: Command,
    stop: &AtomicBool,
    on_percent: &(dyn Fn(f64) + Sync),
) -> Result<Finished, FlashError> {
    let spawn_err = |e| FlashError::QemuImgSpawn {
        source: FlashError::arc(e),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(spawn_err(std::io::Error::other("qemu-img pipes missing")));
    };
    thread::scope(|s| {
        let out = s.spawn(|| {
            let mut all = String::new();
            let mut buf = [0u8; 512];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                if let Some(pct) = last_percent_in(&text) {
                    on_percent(pct);
                }
                all.push_str(&text);
            }
            all
        });
        let err = s.spawn(|| {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let status = wait_or_stop(&mut child, stop);
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        match status {
            Waited::Exited(status) => Ok(Finished {
                code: status.code(),
                status: status.to_string(),
                output: format!("{} {}", stderr.trim(), last_line(&stdout))
                    .trim()
                    .to_owned(),
            }),
            Waited::Stopped => Err(FlashError::Cancelled),
            Waited::Failed(e) => Err(spawn_err(e)),
        }
    })
}

enum Waited {
    Exited(std::process::ExitStatus),
    Stopped,
    Failed(std::io::Error),
}

/// Poll the child every [`POLL`]; on `stop`, SIGTERM, then SIGKILL after
/// [`TERM_GRACE`].
fn wait_or_stop(child: &mut Child, stop: &AtomicBool) -> Waited {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Waited::Exited(status),
            Ok(None) => {}
            Err(e) => return Waited::Failed(e),
        }
        if stop.load(Ordering::Relaxed) {
            let _ = kill_process(Pid::from_child(child), Signal::TERM);
            let deadline = Instant::now() + TERM_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return Waited::Stopped;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            return Waited::Stopped;
        }
        thread::sleep(POLL);
    }
}

/// The last `(NN.NN/100%)` in a piece of `qemu-img -p` output.
fn last_percent_in(text: &str) -> Option<f64> {
    text.rsplit('(')
        .filter_map(|part| part.split_once("/100%)"))
        .find_map(|(num, _)| num.trim().parse::<f64>().ok())
}

fn last_line(text: &str) -> &str {
    text.rsplit(['\r', '\n'])
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('('))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_last_progress_figure() {
        assert_eq!(
            last_percent_in("    (0.00/100%)\r    (28.57/100%)\r"),
            Some(28.57)
        );
        assert_eq!(last_percent_in("nothing"), None);
    }
}
