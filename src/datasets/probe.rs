//! Reading one medium's header: images with `imagesize` (a few KiB read, nothing decoded) plus
//! the animation marks diffusion-pipe cares about; videos with `ffprobe` (argv only, JSON out,
//! killed after a timeout so a broken file cannot hang the scan).

use std::ffi::OsString;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use imagesize::{ImageError, ImageType};

use super::{MediaHeader, VideoProbe};

/// The longest one ffprobe run may take (a file on a stalled network mount, a pathological
/// container): then the video is reported unreadable ("timed out") and the scan goes on.
pub const VIDEO_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes read in one go: every PNG/GIF/WebP/BMP header and most JPEGs fit; larger JPEG headers
/// (EXIF thumbnails before the frame header) fall back to seeking through the segments.
const HEAD: usize = 4096;

fn format_name(t: ImageType) -> &'static str {
    match t {
        ImageType::Bmp => "BMP",
        ImageType::Dds(_) => "DDS",
        ImageType::Gif => "GIF",
        ImageType::Ico => "ICO",
        ImageType::Jpeg => "JPEG",
        ImageType::Png => "PNG",
        ImageType::Pnm => "PNM",
        ImageType::Psd => "PSD",
        ImageType::Qoi => "QOI",
        ImageType::Tga => "TGA",
        ImageType::Tiff => "TIFF",
        ImageType::Webp => "WebP",
        _ => "image",
    }
}

fn image_error(e: ImageError, format: &str) -> String {
    match e {
        ImageError::NotSupported => format!("{format} variant not supported"),
        ImageError::CorruptedImage => format!("corrupt {format} header"),
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("{format} header is truncated")
        }
        ImageError::IoError(e) => format!("{format} header unreadable: {e}"),
    }
}

/// Fills `buf` from the start of `file` (short only at end of file). `size` (from a stat) saves
/// the read that would only confirm the end of a small file.
fn read_head<R: Read>(file: &mut R, buf: &mut [u8], size: u64) -> std::io::Result<usize> {
    let want = buf.len().min(usize::try_from(size).unwrap_or(usize::MAX));
    let mut n = 0;
    while n < want {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether the header bytes say "animation": WebP's VP8X animation flag, an APNG `acTL` chunk
/// before the first `IDAT`, a GIF's NETSCAPE2.0 looping extension.
fn animated(t: ImageType, head: &[u8]) -> bool {
    match t {
        ImageType::Webp => head.len() > 20 && &head[12..16] == b"VP8X" && head[20] & 0x02 != 0,
        ImageType::Png => {
            let mut at = 8;
            while at + 8 <= head.len() {
                let len = u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
                match &head[at + 4..at + 8] {
                    b"acTL" => return true,
                    b"IDAT" => return false,
                    _ => {}
                }
                at = at.saturating_add(12).saturating_add(len as usize);
            }
            false
        }
        ImageType::Gif => memchr::memmem::find(head, b"NETSCAPE2.0").is_some(),
        _ => false,
    }
}

/// Reads an image's size from its header, as PIL's `Image.open(p).size` would give it; `size`
/// is the file's size from a stat. `Err` says why it cannot be used (empty, not an image PIL
/// opens, corrupt or truncated header).
pub fn probe_image<R: Read + Seek>(file: &mut R, size: u64) -> Result<MediaHeader, String> {
    let mut buf = [0u8; HEAD];
    let n = read_head(file, &mut buf, size).map_err(|e| format!("unreadable: {e}"))?;
    if n == 0 {
        return Err("empty file (0 bytes)".into());
    }
    let head = &buf[..n];
    let t = match imagesize::image_type(head) {
        Ok(t) => t,
        Err(ImageError::IoError(_)) => {
            return Err(format!("too short to be an image ({n} bytes)"));
        }
        Err(_) => return Err("not an image format PIL opens".into()),
    };
    let fmt = format_name(t);
    // imagesize reads PNG sizes at fixed offsets; PIL insists the first chunk is IHDR.
    if t == ImageType::Png && head.get(12..16) != Some(b"IHDR".as_slice()) {
        return Err("corrupt PNG header (no IHDR chunk)".into());
    }
    let size = match imagesize::blob_size(head) {
        Ok(s) => s,
        Err(_) if n == HEAD && size > HEAD as u64 => {
            // The header goes on past what was read: walk it in the file itself.
            file.seek(SeekFrom::Start(0))
                .map_err(|e| format!("unreadable: {e}"))?;
            let mut r = BufReader::with_capacity(16 * 1024, &mut *file);
            t.reader_size(&mut r).map_err(|e| image_error(e, fmt))?
        }
        Err(e) => return Err(image_error(e, fmt)),
    };
    if size.width == 0 || size.height == 0 {
        return Err(format!("{fmt} header says {}x{}", size.width, size.height));
    }
    Ok(MediaHeader {
        width: u32::try_from(size.width).map_err(|_| format!("{fmt} width out of range"))?,
        height: u32::try_from(size.height).map_err(|_| format!("{fmt} height out of range"))?,
        animated: animated(t, head),
        source_frames: None,
        fps: None,
    })
}

/// [`probe_image`] on a path (for callers outside the scan).
pub fn probe_image_file(path: &Path) -> Result<MediaHeader, String> {
    use std::os::unix::fs::OpenOptionsExt;
    // NONBLOCK: a FIFO put where a file was listed must not wait for a writer.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags())
        .open(path)
        .map_err(|e| format!("unreadable: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("unreadable: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    probe_image(&mut f, meta.len())
}

fn libc_flags() -> i32 {
    (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32
}

/// `ffprobe` on PATH, if `ffprobe -version` runs.
pub(crate) fn find_ffprobe() -> VideoProbe {
    let Some(path) = find_on_path("ffprobe") else {
        return VideoProbe::Unavailable;
    };
    match run_with_timeout(&path, &["-version".into()], Duration::from_secs(10)) {
        Ok(out) if out.status_ok => {
            let text = String::from_utf8_lossy(&out.stdout);
            // "ffprobe version 5.1.8-0+deb12u1 Copyright ..." → "5.1.8-0+deb12u1"
            let version = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("ffprobe version "))
                .and_then(|l| l.split_whitespace().next())
                .unwrap_or("unknown")
                .to_string();
            VideoProbe::Ffprobe { path, version }
        }
        _ => VideoProbe::Unavailable,
    }
}

pub(crate) fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

struct Output {
    status_ok: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `program args` (argv, no shell), its output collected; killed after `timeout`.
fn run_with_timeout(
    program: &Path,
    args: &[OsString],
    timeout: Duration,
) -> Result<Output, String> {
    use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    // A pidfd taken while the child cannot have been reaped: signalling it can never hit a
    // recycled pid, whatever the waiting thread does meanwhile.
    let pidfd =
        Pid::from_raw(child.id() as i32).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok());
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let result = match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => {
            if let Some(fd) = &pidfd {
                // Already gone is fine: then the output is on its way.
                let _ = pidfd_send_signal(fd, Signal::KILL);
            }
            let _ = waiter.join();
            return Err(format!("timed out after {} s", timeout.as_secs_f64()));
        }
    };
    let _ = waiter.join();
    let out = result.map_err(|e| format!("{} failed: {e}", program.display()))?;
    Ok(Output {
        status_ok: out.status.success(),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

fn stderr_reason(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    // ffprobe prefixes the input name; keep what comes after it.
    let reason = last.rsplit_once(": ").map_or(last, |(_, r)| r).trim();
    if reason.is_empty() {
        "ffprobe could not read it".into()
    } else {
        crate::units::escape_controls(reason, false).into_owned()
    }
}

/// `num/den` as ffprobe prints rates ("30000/1001"); `None` for 0/0, N/A and the like.
fn parse_rate(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let (n, d) = (n.trim().parse::<f64>().ok()?, d.trim().parse::<f64>().ok()?);
    let r = n / d;
    (r.is_finite() && r > 0.0).then_some(r)
}

/// ffprobe prints numbers as JSON strings ("45") or numbers; "N/A" means absent.
fn json_u64(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn json_f64(v: Option<&serde_json::Value>) -> Option<f64> {
    match v? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn ffprobe_json(
    ffprobe: &Path,
    file: &Path,
    entries: &str,
    count_packets: bool,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    // `file:` so a name with a colon is never taken for a protocol (`http:`, `concat:` ...).
    let mut input = OsString::from("file:");
    input.push(file.as_os_str());
    let mut args: Vec<OsString> = ["-v", "error", "-select_streams", "v:0", "-show_entries"]
        .iter()
        .map(OsString::from)
        .collect();
    args.push(entries.into());
    if count_packets {
        args.push("-count_packets".into());
    }
    args.extend(["-of", "json", "-i"].iter().map(OsString::from));
    args.push(input);
    let out = run_with_timeout(ffprobe, &args, timeout)?;
    if !out.status_ok {
        return Err(stderr_reason(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("ffprobe output unreadable: {e}"))
}

/// A video's size, source frame count and frame rate, as diffusion-pipe's reader (PyAV through
/// ComfyUI's `VideoFromFile`) gives them: frames = the stream's frame count from the container
/// (`nb_frames`) when it has one, else counted (`-count_packets`: demuxed, not decoded; for
/// `.mkv` diffusion-pipe always decodes to count); fps = the average frame rate.
pub fn probe_video_file(
    ffprobe: &Path,
    file: &Path,
    timeout: Duration,
) -> Result<MediaHeader, String> {
    let v = ffprobe_json(
        ffprobe,
        file,
        "stream=width,height,nb_frames,avg_frame_rate:format=duration",
        false,
        timeout,
    )?;
    let Some(stream) = v.get("streams").and_then(|s| s.get(0)) else {
        return Err("no video stream".into());
    };
    let width = json_u64(stream.get("width")).unwrap_or(0);
    let height = json_u64(stream.get("height")).unwrap_or(0);
    if width == 0 || height == 0 {
        return Err(format!("video stream is {width}x{height}"));
    }
    let is_mkv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mkv"));
    let mut frames = json_u64(stream.get("nb_frames")).filter(|&n| n > 0 && !is_mkv);
    if frames.is_none() {
        let c = ffprobe_json(ffprobe, file, "stream=nb_read_packets", true, timeout)?;
        frames = json_u64(
            c.get("streams")
                .and_then(|s| s.get(0))
                .and_then(|s| s.get("nb_read_packets")),
        )
        .filter(|&n| n > 0);
    }
    let duration = json_f64(v.get("format").and_then(|f| f.get("duration")));
    let fps = stream
        .get("avg_frame_rate")
        .and_then(|r| r.as_str())
        .and_then(parse_rate)
        .or_else(|| match (frames, duration) {
            (Some(n), Some(d)) if d > 0.0 => Some(n as f64 / d),
            _ => None,
        });
    Ok(MediaHeader {
        width: u32::try_from(width).map_err(|_| "width out of range".to_string())?,
        height: u32::try_from(height).map_err(|_| "height out of range".to_string())?,
        animated: false,
        source_frames: frames,
        fps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_bytes(bytes: &[u8]) -> Result<MediaHeader, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, bytes).unwrap();
        probe_image_file(&p)
    }

    fn png_header(w: u32, h: u32, extra_chunk: Option<&[u8; 4]>) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 6, 0, 0, 0]);
        v.extend_from_slice(&[0; 4]); // CRC (not checked by a header read)
        if let Some(t) = extra_chunk {
            v.extend_from_slice(&8u32.to_be_bytes());
            v.extend_from_slice(t);
            v.extend_from_slice(&[0; 8 + 4]);
        }
        v.extend_from_slice(&0u32.to_be_bytes());
        v.extend_from_slice(b"IDAT");
        v.extend_from_slice(&[0; 4]);
        v
    }

    #[test]
    fn png_sizes_and_apng_mark() {
        let h = probe_bytes(&png_header(640, 360, None)).unwrap();
        assert_eq!((h.width, h.height, h.animated), (640, 360, false));
        let h = probe_bytes(&png_header(3, 5, Some(b"acTL"))).unwrap();
        assert_eq!((h.width, h.height, h.animated), (3, 5, true));
        // A chunk length that points past the buffer must not panic.
        let mut v = png_header(1, 1, None);
        v[33..37].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(probe_bytes(&v).is_ok());
    }

    #[test]
    fn hand_made_animated_webp_header() {
        // RIFF <size> WEBP VP8X <10> flags(animation = 0x02) 3 reserved, canvas w-1, h-1 (24-bit LE)
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&30u32.to_le_bytes());
        v.extend_from_slice(b"WEBPVP8X");
        v.extend_from_slice(&10u32.to_le_bytes());
        v.extend_from_slice(&[0x02, 0, 0, 0]);
        let (w, h) = (320u32 - 1, 240u32 - 1);
        v.extend_from_slice(&w.to_le_bytes()[..3]);
        v.extend_from_slice(&h.to_le_bytes()[..3]);
        v.extend_from_slice(b"ANIM");
        v.extend_from_slice(&[0; 10]);
        let got = probe_bytes(&v).unwrap();
        assert_eq!((got.width, got.height, got.animated), (320, 240, true));
        v[20] = 0x10; // alpha only
        assert!(!probe_bytes(&v).unwrap().animated);
    }

    #[test]
    fn jpeg_frame_header_past_the_first_read() {
        // SOI, an APP1 (EXIF-like) segment of 20,000 bytes, then SOF0 with 123x45.
        let mut v = vec![0xff, 0xd8, 0xff, 0xe1];
        let app1_len: u16 = 20_000;
        v.extend_from_slice(&app1_len.to_be_bytes());
        v.resize(v.len() + app1_len as usize - 2, 0x41);
        v.extend_from_slice(&[0xff, 0xc0, 0, 17, 8]);
        v.extend_from_slice(&45u16.to_be_bytes());
        v.extend_from_slice(&123u16.to_be_bytes());
        v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        v.extend_from_slice(&[0xff, 0xd9]);
        assert!(v.len() > HEAD);
        let h = probe_bytes(&v).unwrap();
        assert_eq!((h.width, h.height), (123, 45));
        // Cut inside the APP1 segment: truncated, not a panic.
        assert!(probe_bytes(&v[..10_000]).is_err());
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        assert_eq!(probe_bytes(b"").unwrap_err(), "empty file (0 bytes)");
        assert!(probe_bytes(b"hello, this is text not an image").is_err());
        assert!(probe_bytes(&[0xff, 0xd8, 0xff]).is_err());
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff];
        jpeg.resize(5000, 0xab);
        assert!(probe_bytes(&jpeg).is_err());
        // Pseudo-random junk of many lengths.
        let mut x: u32 = 12345;
        for len in [1usize, 2, 11, 12, 13, 30, 100, 4095, 4096, 4097, 10000] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1103515245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = probe_bytes(&bytes);
            for magic in [
                &b"\x89PNG\r\n\x1a\n"[..],
                b"GIF89a",
                b"RIFF\0\0\0\0WEBPVP8 ",
                b"\xff\xd8\xff",
            ] {
                let mut b = magic.to_vec();
                b.extend_from_slice(&bytes);
                let _ = probe_bytes(&b);
            }
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("30/1"), Some(30.0));
        assert!((parse_rate("30000/1001").unwrap() - 29.97).abs() < 0.001);
        assert_eq!(parse_rate("0/0"), None);
        assert_eq!(parse_rate("N/A"), None);
    }

    #[test]
    fn a_hanging_ffprobe_is_killed_at_the_timeout() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("ffprobe");
        std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t0 = std::time::Instant::now();
        let err = probe_video_file(&fake, &dir.path().join("v.mp4"), Duration::from_millis(300))
            .unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    }
}
