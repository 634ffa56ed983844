//! A private MPS control daemon for emulated slices, started and always stopped by the
//! front end.
//!
//! The daemon gets its own pipe and log folders under `/tmp`, so it never meets a daemon
//! someone else runs. Beside it runs a guardian, `sh -c 'read _; echo quit |
//! nvidia-cuda-mps-control'`, in its own process group, whose stdin is a pipe from the
//! front end: however the front end ends (normal return, error, panic, SIGKILL), that pipe
//! closes and the guardian quits the daemon. MPS changes no GPU setting; MIG mode is never
//! touched.

use crate::error::ServeError;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The control program.
pub const CONTROL: &str = "nvidia-cuda-mps-control";

/// A running private daemon.
pub struct MpsDaemon {
    dir: Option<tempfile::TempDir>,
    guardian: Child,
    env: Vec<(String, String)>,
}

impl MpsDaemon {
    /// Starts the daemon and its guardian.
    pub fn start() -> Result<Self, ServeError> {
        let dir = tempfile::Builder::new()
            .prefix("migopt-mps-")
            .tempdir_in("/tmp")
            .map_err(|e| ServeError::Io {
                what: "cannot create the MPS folders in /tmp".into(),
                source: e,
            })?;
        let pipe = dir.path().join("pipe");
        let log = dir.path().join("log");
        for d in [&pipe, &log] {
            std::fs::create_dir(d).map_err(|e| ServeError::Io {
                what: format!("cannot create {}", d.display()),
                source: e,
            })?;
        }
        let env = vec![
            (
                "CUDA_MPS_PIPE_DIRECTORY".to_string(),
                pipe.display().to_string(),
            ),
            (
                "CUDA_MPS_LOG_DIRECTORY".to_string(),
                log.display().to_string(),
            ),
        ];
        let out = Command::new(CONTROL)
            .arg("-d")
            .envs(env.iter().cloned())
            .output()
            .map_err(|e| ServeError::Mps(format!("cannot run {CONTROL} -d: {e}")))?;
        if !out.status.success() {
            return Err(ServeError::Mps(format!(
                "{CONTROL} -d failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let guardian = Command::new("sh")
            .arg("-c")
            .arg(format!("read _; echo quit | {CONTROL}"))
            .envs(env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let guardian = match guardian {
            Ok(g) => g,
            Err(e) => {
                quit(&env);
                return Err(ServeError::Mps(format!("cannot start the guardian: {e}")));
            }
        };
        Ok(Self {
            dir: Some(dir),
            guardian,
            env,
        })
    }

    /// The variables a client needs to reach this daemon.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Quits the daemon (through the guardian) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.guardian.stdin.take()); // end of file: the guardian quits the daemon
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.guardian.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.guardian.kill();
                    let _ = self.guardian.wait();
                    quit(&self.env);
                    break;
                }
            }
        }
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }
}

fn quit(env: &[(String, String)]) {
    use std::io::Write;
    if let Ok(mut c) = Command::new(CONTROL)
        .envs(env.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        if let Some(mut i) = c.stdin.take() {
            let _ = i.write_all(b"quit\n");
        }
        let _ = c.wait();
    }
}

impl Drop for MpsDaemon {
    fn drop(&mut self) {
        if self.dir.is_some() {
            self.shutdown();
        }
    }
}
