//! Long-running child processes (the Runtime API emulator, the Lambda bootstrap) that cannot outlive
//! the test, with their output in log files under `target/tmp/emulator/`.
//!
//! Each runs under `sh` with the lifeline trick `tests/api/moto.rs` uses for moto: `sh` starts the
//! program in the background plus a watcher that kills it when its stdin (a pipe only this process
//! holds) reaches EOF. Dropping a [`Supervised`] closes the pipe; so does the kernel when the test
//! process ends, however it ends (panic, timeout, SIGKILL): no emulator or bootstrap is left behind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `sh -c RUN_WITH_LIFELINE sh PROGRAM ARGS…`: the program in the background, a watcher that
/// kills it on EOF on fd 3 (the original stdin). `sh` exits when the program does, so an early
/// death is seen at once. `cargo` execs its subcommands (`cargo lambda …` becomes the
/// `cargo-lambda` process), so `$pid` is the process that listens.
const RUN_WITH_LIFELINE: &str = r#"
exec 3<&0 0</dev/null
"$@" 3<&- &
pid=$!
{ read -r _ignored <&3; kill "$pid" 2>/dev/null; } &
wait "$pid"
"#;

/// How long dropping waits for the program to stop after its lifeline is cut.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running child whose stdout and stderr go to `<dir>/<name>.stdout.log` / `.stderr.log`.
pub struct Supervised {
    name: String,
    child: Child,
    lifeline: Option<ChildStdin>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Supervised {
    /// Starts `command`'s program with its arguments, directory and environment variables under
    /// the lifeline; with `clean_env`, the program sees only the variables set on `command` (as a
    /// Lambda bootstrap does). Panics with a clear message if it cannot be started.
    pub fn spawn(name: &str, command: &Command, clean_env: bool, log_dir: &Path) -> Supervised {
        let stdout = log_dir.join(format!("{name}.stdout.log"));
        let stderr = log_dir.join(format!("{name}.stderr.log"));
        let create = |path: &Path| File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        let mut sh = Command::new("/bin/sh");
        sh.arg("-c")
            .arg(RUN_WITH_LIFELINE)
            .arg("sh")
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::piped())
            .stdout(create(&stdout))
            .stderr(create(&stderr));
        if let Some(dir) = command.get_current_dir() {
            sh.current_dir(dir);
        }
        if clean_env {
            // `/bin/sh` needs no PATH: the program's path is absolute and `read`/`kill` are builtins.
            sh.env_clear();
        }
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => sh.env(key, value),
                None => sh.env_remove(key),
            };
        }
        let mut child = sh
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({:?}) under /bin/sh: {e}", command.get_program()));
        let lifeline = child.stdin.take();
        Supervised {
            name: name.to_owned(),
            child,
            lifeline,
            stdout,
            stderr,
        }
    }

    /// The exit status, if the program has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Its stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Both logs, labelled with their paths, for a failure message.
    pub fn logs(&self) -> String {
        format!(
            "---- {name} stdout ({}):\n{}\n---- {name} stderr ({}):\n{}",
            self.stdout.display(),
            self.stdout(),
            self.stderr.display(),
            self.stderr(),
            name = self.name
        )
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // Cutting the lifeline makes the watcher kill the program; `sh` then exits.
        drop(self.lifeline.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!(
            "warning: {} did not stop within {STOP_TIMEOUT:?} of its lifeline being cut; killed its sh (pid {})",
            self.name,
            self.child.id()
        );
    }
}
