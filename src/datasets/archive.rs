//! `.tar` archives at the top level of a dataset directory. diffusion-pipe makes every member
//! of one a medium (`tarfile.getnames()`), opens images from the archive with PIL, and looks up
//! captions in `captions.json` by the member's path: it looks for a member's `.txt` relative to
//! its own working directory, not in the archive, and reads videos by the member's path outside
//! the archive too, so both are effectively missing.

use std::io::{Cursor, Read, Seek};

use super::{MediaHeader, MediaKind};
use crate::trainer::dataset::files::{self, FileKind};

/// Bytes of a member read for its header: a header past this is reported as unreadable.
const MEMBER_HEAD: u64 = 1 << 20;

/// Members looked at in one archive; past this the rest is reported, not read.
pub const MAX_MEMBERS: usize = 1_000_000;

/// One member of an archive, as diffusion-pipe will treat it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The member's path in the archive (the captions.json key).
    pub name: String,
    pub kind: MediaKind,
    pub bytes: u64,
    /// As PIL would read it from the archive; `Err` says why diffusion-pipe skips it.
    pub header: Result<MediaHeader, String>,
}

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    pub members: Vec<Member>,
    /// Directory members (diffusion-pipe lists them too; they never load).
    pub directories: usize,
    /// The archive ends early or is corrupt from here on (what came before is listed).
    pub error: Option<String>,
}

/// Reads the members of the archive `r` (an uncompressed tar, as diffusion-pipe's
/// `tarfile.TarFile` reads), with a header probe of each image, until its end, an error, or
/// `cancelled()`.
pub fn read_members<R: Read + Seek>(r: R, cancelled: &dyn Fn() -> bool) -> Listing {
    let mut out = Listing::default();
    let mut archive = tar::Archive::new(r);
    // Seeks past member data instead of reading it: an archive may hold gigabytes.
    let entries = match archive.entries_with_seek() {
        Ok(e) => e,
        Err(e) => {
            out.error = Some(format!("not a readable tar archive: {e}"));
            return out;
        }
    };
    for entry in entries {
        if cancelled() {
            break;
        }
        if out.members.len() >= MAX_MEMBERS {
            out.error = Some(format!(
                "more than {MAX_MEMBERS} members: the rest not read"
            ));
            break;
        }
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.error = Some(format!("corrupt after {} members: {e}", out.members.len()));
                break;
            }
        };
        let name = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => {
                out.error = Some(format!("a member name cannot be read: {e}"));
                break;
            }
        };
        let ty = entry.header().entry_type();
        if ty.is_dir() {
            out.directories += 1;
            continue;
        }
        let bytes = entry.size();
        let base = name.rsplit('/').next().unwrap_or(&name);
        let video = files::classify(base) == FileKind::Video;
        let header = if video {
            Err(
                "a video inside a .tar: diffusion-pipe reads videos by the member's path outside \
                 the archive, so it cannot open it and skips it"
                    .to_string(),
            )
        } else if !(ty.is_file() || ty.is_contiguous()) {
            Err("not a regular file in the archive (a link or special entry)".to_string())
        } else {
            probe_member(&mut entry, bytes)
        };
        out.members.push(Member {
            name,
            kind: if video {
                MediaKind::Video
            } else {
                MediaKind::Image
            },
            bytes,
            header,
        });
    }
    out
}

/// The bytes of `member` in the tar at `archive` (seeking past the others), if it has at most
/// `max` of them.
pub fn read_member(archive: &std::path::Path, member: &str, max: u64) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(archive).map_err(|e| format!("cannot open: {e}"))?;
    let mut a = tar::Archive::new(std::io::BufReader::new(f));
    for entry in a
        .entries_with_seek()
        .map_err(|e| format!("cannot read: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("cannot read: {e}"))?;
        if entry.path().is_ok_and(|p| p.to_string_lossy() == member) {
            if entry.size() > max {
                return Err(format!(
                    "{member} is over {} in the archive: not read",
                    crate::units::format_bytes(max)
                ));
            }
            let mut v = Vec::with_capacity(entry.size() as usize);
            entry
                .read_to_end(&mut v)
                .map_err(|e| format!("cannot read: {e}"))?;
            return Ok(v);
        }
    }
    Err(format!("{member} is no longer in the archive"))
}

/// A header is read from the first 4 KiB of a member, or if it goes on past them (a JPEG with
/// a big EXIF block), from up to its first MiB: the rest of the member is skipped unread.
fn probe_member<R: Read>(entry: &mut R, bytes: u64) -> Result<MediaHeader, String> {
    let mut head = Vec::with_capacity(bytes.min(FIRST_READ) as usize);
    let mut read_up_to = |head: &mut Vec<u8>, limit: u64| {
        let have = head.len() as u64;
        entry
            .take(limit.saturating_sub(have))
            .read_to_end(head)
            .map_err(|e| format!("unreadable in the archive: {e}"))
    };
    read_up_to(&mut head, FIRST_READ)?;
    let probe = |head: &[u8]| super::probe::probe_image(&mut Cursor::new(head), head.len() as u64);
    match probe(&head) {
        Err(_) if bytes > FIRST_READ => {
            read_up_to(&mut head, MEMBER_HEAD)?;
            probe(&head).map_err(|e| {
                if bytes > MEMBER_HEAD {
                    format!("{e} (only the first MiB of a member is read)")
                } else {
                    e
                }
            })
        }
        r => r,
    }
}

/// What is read of a member first.
const FIRST_READ: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(members: &[(&str, &[u8])], dirs: &[&str]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for d in dirs {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_mode(0o755);
            b.append_data(&mut h, d, std::io::empty()).unwrap();
        }
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut v = Vec::new();
        image::RgbImage::new(w, h)
            .write_to(&mut Cursor::new(&mut v), image::ImageFormat::Png)
            .unwrap();
        v
    }

    #[test]
    fn members_are_listed_with_image_sizes_videos_and_junk_skipped() {
        let (a, b) = (png(30, 20), png(7, 9));
        let t = tar_of(
            &[
                ("x/a.png", &a),
                ("b.jpeg", &b),
                ("clip.mp4", b"not read"),
                ("notes.txt", b"hello"),
            ],
            &["x"],
        );
        let l = read_members(Cursor::new(t), &|| false);
        assert_eq!(l.directories, 1);
        assert_eq!(l.error, None);
        let got: Vec<_> = l
            .members
            .iter()
            .map(|m| {
                (
                    m.name.as_str(),
                    m.kind,
                    m.header.as_ref().map(|h| (h.width, h.height)).ok(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("x/a.png", MediaKind::Image, Some((30, 20))),
                // The suffix does not matter to PIL: the content is a PNG.
                ("b.jpeg", MediaKind::Image, Some((7, 9))),
                ("clip.mp4", MediaKind::Video, None),
                ("notes.txt", MediaKind::Image, None),
            ]
        );
        assert!(
            l.members[2]
                .header
                .as_ref()
                .unwrap_err()
                .contains("video inside a .tar")
        );
    }

    #[test]
    fn a_header_past_the_first_read_is_read_from_further_in() {
        let mut jpeg = Vec::new();
        image::RgbImage::new(33, 17)
            .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        // A 10,000-byte APP1 (EXIF-like) segment right after SOI pushes the size past 4 KiB.
        let mut big = jpeg[..2].to_vec();
        big.extend([0xFF, 0xE1]);
        big.extend(10_002u16.to_be_bytes());
        big.extend(std::iter::repeat_n(0u8, 10_000));
        big.extend(&jpeg[2..]);
        let t = tar_of(&[("exif.jpg", &big)], &[]);
        let l = read_members(Cursor::new(t), &|| false);
        let h = l.members[0].header.as_ref().unwrap();
        assert_eq!((h.width, h.height), (33, 17));
    }

    #[test]
    fn a_truncated_or_foreign_archive_says_so_and_keeps_what_came_before() {
        let a = png(4, 4);
        let mut t = tar_of(&[("a.png", &a), ("b.png", &a)], &[]);
        // Cut inside the second member's data.
        t.truncate(512 + 512 + 512 + 10);
        let l = read_members(Cursor::new(t), &|| false);
        assert_eq!(l.members.len(), 2, "{l:?}");
        assert!(l.members[0].header.is_ok());
        assert!(l.members[1].header.is_err());

        let l = read_members(
            Cursor::new(b"certainly not a tar archive".repeat(40)),
            &|| false,
        );
        assert!(l.members.is_empty());
        assert!(l.error.is_some(), "{l:?}");
    }
}
