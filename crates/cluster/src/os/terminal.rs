//! The pseudo-terminal of `exec -t` (`kubectl exec -it`): a pty pair whose secondary side
//! becomes the command's stdin, stdout, stderr and controlling terminal, whose primary side
//! carries the client's keystrokes in and the command's output out, and whose window size
//! follows the client's resize messages (`{"Width":…,"Height":…}` on the resize stream or
//! channel 4, as `remotecommand.TerminalSize` marshals).

use std::{
    io,
    os::fd::{AsFd, OwnedFd},
    pin::Pin,
    process::Stdio,
    sync::Arc,
    task::{Context, Poll, ready},
};

use rustix::{
    pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt},
    termios::{Winsize, tcsetwinsize},
};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, unix::AsyncFd};

/// A window size, as clients send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Size {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The primary side of a pty: what the exec relays.
#[derive(Debug)]
pub struct Terminal {
    primary: AsyncFd<OwnedFd>,
}

/// The secondary side, for the command.
#[derive(Debug)]
pub struct Secondary(OwnedFd);

impl Secondary {
    /// One of the command's standard streams.
    ///
    /// # Errors
    /// The descriptor could not be duplicated.
    pub fn stdio(&self) -> io::Result<Stdio> {
        Ok(Stdio::from(self.0.try_clone()?))
    }
}

impl Terminal {
    /// Opens a pty pair.
    ///
    /// # Errors
    /// The system has no pty to give.
    pub fn open() -> io::Result<(Self, Secondary)> {
        let primary = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        grantpt(&primary)?;
        unlockpt(&primary)?;
        let name = ptsname(&primary, Vec::new())?;
        use std::os::unix::{ffi::OsStrExt, fs::OpenOptionsExt};
        let path = std::ffi::OsStr::from_bytes(name.as_bytes());
        let secondary = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)?;
        rustix::io::ioctl_fionbio(&primary, true)?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        // SAFETY: an `OwnedFd` stays open, and the same descriptor, for as long as the
        // `AsyncFd` owns it — what registering it with the reactor requires.
        #[allow(unsafe_code)]
        let primary = unsafe { AsyncFd::register_with_interest(primary, interest) }
            .map_err(io::Error::from)?;
        Ok((Self { primary }, Secondary(OwnedFd::from(secondary))))
    }

    /// Sets the window size (the command gets SIGWINCH).
    ///
    /// # Errors
    /// The pty refused it.
    pub fn resize(&self, size: Size) -> io::Result<()> {
        let winsize = Winsize {
            ws_row: size.height,
            ws_col: size.width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        Ok(tcsetwinsize(self.primary.get_ref(), winsize)?)
    }
}

/// Starts `command` on a new terminal — its stdin, stdout, stderr and controlling terminal,
/// with `TERM=xterm` unless the command's environment sets one — sized `size` first when
/// given.
///
/// # Errors
/// No terminal could be had, or the command could not start.
pub async fn spawn(
    mut command: tokio::process::Command,
    size: Option<Size>,
) -> io::Result<(tokio::process::Child, Arc<Terminal>)> {
    let (terminal, secondary) = Terminal::open()?;
    if let Some(size) = size {
        terminal.resize(size)?;
    }
    command
        .stdin(secondary.stdio()?)
        .stdout(secondary.stdio()?)
        .stderr(secondary.stdio()?);
    if !command.as_std().get_envs().any(|(name, _)| name == "TERM") {
        command.env("TERM", "xterm");
    }
    let child = super::group::spawn_on_terminal(command).await?;
    // The command holds the secondary side now; ours closing lets the end be seen.
    drop(secondary);
    Ok((child, Arc::new(terminal)))
}

/// Applies the sizes arriving on `resize` (decoded by `sizes`, which may hold a started
/// message) to `terminal` until the client stops sending; without a terminal they are read and
/// dropped.
pub fn follow(
    mut resize: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    mut sizes: Sizes,
    terminal: Option<Arc<Terminal>>,
) {
    tokio::spawn(async move {
        while let Some(bytes) = resize.recv().await {
            for size in sizes.push(&bytes) {
                if let Some(terminal) = &terminal {
                    let _ = terminal.resize(size);
                }
            }
        }
    });
}

/// A shared terminal as a byte stream: what is read is the screen, what is written is typed.
#[derive(Debug, Clone)]
pub struct Pty(pub Arc<Terminal>);

impl AsyncRead for Pty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut ready = ready!(self.0.primary.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match ready.try_io(|fd| Ok(rustix::io::read(fd.as_fd(), &mut *unfilled)?)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // The end (every holder of the secondary side closed it).
                Ok(Err(err)) if err.raw_os_error() == Some(libc::EIO) => {
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(err)) => return Poll::Ready(Err(err)),
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for Pty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut ready = ready!(self.0.primary.poll_write_ready(cx))?;
            match ready.try_io(|fd| Ok(rustix::io::write(fd.as_fd(), bytes)?)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => {}
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Splits the resize stream into sizes: JSON objects, one after another, however the bytes
/// arrive.
#[derive(Debug, Default)]
pub struct Sizes {
    pending: Vec<u8>,
}

impl Sizes {
    /// Takes more bytes; the complete sizes they finish (malformed ones are skipped).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Size> {
        self.pending.extend_from_slice(bytes);
        let mut sizes = Vec::new();
        let mut stream =
            serde_json::Deserializer::from_slice(&self.pending).into_iter::<serde_json::Value>();
        let mut used = 0;
        loop {
            match stream.next() {
                Some(Ok(value)) => {
                    used = stream.byte_offset();
                    sizes.extend(serde_json::from_value::<Size>(value).ok());
                }
                Some(Err(err)) if err.is_eof() => break,
                Some(Err(_)) => {
                    // Not JSON: drop what is there and start over with the next bytes.
                    used = self.pending.len();
                    break;
                }
                None => {
                    used = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..used);
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_however_the_bytes_are_split() {
        let mut sizes = Sizes::default();
        assert_eq!(sizes.push(br#"{"Width":80,"#), vec![]);
        assert_eq!(
            sizes.push(b"\"Height\":24}\n{\"Width\":100,\"Height\":30}\n{\"Wi"),
            vec![
                Size {
                    width: 80,
                    height: 24
                },
                Size {
                    width: 100,
                    height: 30
                }
            ]
        );
        assert_eq!(
            sizes.push(br#"dth":1,"Height":2}"#),
            vec![Size {
                width: 1,
                height: 2
            }]
        );
        assert_eq!(sizes.push(b"garbage"), vec![]);
        assert_eq!(
            sizes.push(br#"{"Width":5,"Height":6}"#),
            vec![Size {
                width: 5,
                height: 6
            }]
        );
    }

    #[tokio::test]
    async fn output_written_to_the_secondary_side_is_read_then_the_end() {
        let (terminal, secondary) = Terminal::open().unwrap();
        terminal
            .resize(Size {
                width: 120,
                height: 40,
            })
            .unwrap();
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "stty size; echo done"])
            .stdin(secondary.stdio().unwrap())
            .stdout(secondary.stdio().unwrap())
            .stderr(secondary.stdio().unwrap())
            .spawn()
            .unwrap();
        drop(secondary);
        let mut output = Vec::new();
        use tokio::io::AsyncReadExt;
        Pty(Arc::new(terminal))
            .read_to_end(&mut output)
            .await
            .unwrap();
        assert!(child.wait().await.unwrap().success());
        assert_eq!(String::from_utf8_lossy(&output), "40 120\r\ndone\r\n");
    }
}
