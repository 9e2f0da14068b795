//! Image previews in the media browser: kitty, sixel or iTerm2 graphics where the terminal
//! speaks one (asked once at start-up), Unicode half blocks elsewhere.
//!
//! Decoding runs on a blocking thread (`decode`); the view turns the decoded thumbnail into the
//! terminal's protocol for the area it draws in, cached until the area changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use image::DynamicImage;
use ratatui::layout::{Rect, Size};
use ratatui_image::Resize;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;

/// The longest side kept after decoding: more than any terminal cell grid shows.
const THUMB: u32 = 1024;
/// Refuse images whose decoded pixels would take more than this (decompression bombs).
const MAX_ALLOC: u64 = 512 << 20;

static PICKER: OnceLock<Picker> = OnceLock::new();

/// Chooses how previews are drawn. `setting` is the `image_protocol` key: auto (from the
/// terminal's environment: kitty, WezTerm/iTerm2, sixel terminals, else half blocks), kitty,
/// sixel, iterm2, halfblocks. The terminal is not queried: an unanswered query leaves a thread
/// reading stdin that swallows keys (tmux, some SSH clients).
pub fn init(setting: &str) {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let protocol = match setting {
        "kitty" => ProtocolType::Kitty,
        "sixel" => ProtocolType::Sixel,
        "iterm2" => ProtocolType::Iterm2,
        "halfblocks" => ProtocolType::Halfblocks,
        _ => guess(
            &env("TERM"),
            &env("TERM_PROGRAM"),
            !env("KITTY_WINDOW_ID").is_empty(),
        ),
    };
    let _ = PICKER.set(picker_for(protocol, font_size()));
}

/// A picker drawing with `protocol` for cells of `font` pixels.
fn picker_for(protocol: ProtocolType, font: ratatui_image::FontSize) -> Picker {
    #[allow(deprecated)] // from_fontsize is the way to build a picker without a stdin query.
    let mut picker = Picker::from_fontsize(font);
    picker.set_protocol_type(protocol);
    picker
}

/// The protocol a terminal speaks, from its environment. Inside tmux (TERM=tmux*/screen*)
/// graphics do not pass through: half blocks.
pub fn guess(term: &str, term_program: &str, kitty_window: bool) -> ProtocolType {
    if term.starts_with("tmux") || term.starts_with("screen") {
        return ProtocolType::Halfblocks;
    }
    if term == "xterm-kitty" || term == "xterm-ghostty" || kitty_window || term_program == "ghostty"
    {
        return ProtocolType::Kitty;
    }
    if matches!(term_program, "iTerm.app" | "WezTerm") {
        return ProtocolType::Iterm2;
    }
    if term.starts_with("foot") || term.starts_with("mlterm") || term.contains("sixel") {
        return ProtocolType::Sixel;
    }
    ProtocolType::Halfblocks
}

/// The cell size in pixels from the terminal (TIOCGWINSZ), or a common 10x20.
fn font_size() -> ratatui_image::FontSize {
    if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdout())
        && ws.ws_col > 0
        && ws.ws_row > 0
        && ws.ws_xpixel >= ws.ws_col
        && ws.ws_ypixel >= ws.ws_row
    {
        return ratatui_image::FontSize::new(ws.ws_xpixel / ws.ws_col, ws.ws_ypixel / ws.ws_row);
    }
    ratatui_image::FontSize::new(10, 20)
}

fn picker() -> &'static Picker {
    PICKER.get_or_init(Picker::halfblocks)
}

pub fn protocol_name(p: ProtocolType) -> String {
    match p {
        ProtocolType::Halfblocks => "half blocks",
        ProtocolType::Sixel => "sixel",
        ProtocolType::Kitty => "kitty",
        ProtocolType::Iterm2 => "iTerm2",
    }
    .to_string()
}

/// The protocol in use (for the browser's title).
pub fn current_protocol() -> String {
    protocol_name(picker().protocol_type())
}

/// A decoded preview and the protocol rendering of it for the last area drawn.
#[derive(Clone)]
pub struct PreviewState {
    pub path: PathBuf,
    /// The thumbnail, or why there is none.
    pub image: Result<Arc<DynamicImage>, String>,
    /// (the area size it was made for, the protocol): drawing is `&self`, the cache is not state.
    pub rendered: Arc<Mutex<Option<(Size, Protocol)>>>,
}

impl std::fmt::Debug for PreviewState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewState")
            .field("path", &self.path)
            .field(
                "image",
                &self.image.as_ref().map(|i| (i.width(), i.height())),
            )
            .finish_non_exhaustive()
    }
}

impl PartialEq for PreviewState {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && Arc::ptr_eq(&self.rendered, &other.rendered)
    }
}

impl PreviewState {
    /// The protocol for an area of this size, made once per size.
    pub fn with_protocol<R>(
        &self,
        size: Size,
        f: impl FnOnce(&Protocol) -> R,
    ) -> Result<R, String> {
        let img = self.image.as_ref().map_err(Clone::clone)?;
        let mut cache = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if cache.as_ref().is_none_or(|(s, _)| *s != size) {
            let p = picker()
                .new_protocol(
                    (**img).clone(),
                    size,
                    Resize::Scale(Some(image::imageops::FilterType::Triangle)),
                )
                .map_err(|e| format!("cannot draw the image: {e}"))?;
            *cache = Some((size, p));
        }
        let (_, p) = cache.as_ref().expect("just filled");
        Ok(f(p))
    }

    /// Where the image lands inside `area` (it keeps its aspect ratio).
    pub fn area_in(&self, area: Rect) -> Rect {
        self.with_protocol(area.as_size(), |p| {
            let s = p.size();
            Rect::new(
                area.x,
                area.y,
                s.width.min(area.width),
                s.height.min(area.height),
            )
        })
        .unwrap_or(area)
    }
}

/// Decodes `path` into a thumbnail (blocking: run it off the UI thread).
pub fn decode(path: &Path) -> PreviewState {
    PreviewState {
        path: path.to_path_buf(),
        image: decode_image(path).map(Arc::new),
        rendered: Arc::new(Mutex::new(None)),
    }
}

/// Members of a `.tar` are previewed up to this size (read into memory).
const MAX_MEMBER: u64 = 64 << 20;

/// `path` as "DIR/archive.tar/member": the archive and the member's path in it.
fn archive_member(path: &Path) -> Option<(&Path, String)> {
    path.ancestors().skip(1).find_map(|a| {
        let is_tar = a
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(crate::trainer::dataset::files::is_tar);
        (is_tar && a.is_file()).then(|| {
            let member = path.strip_prefix(a).unwrap_or(path);
            (a, member.to_string_lossy().into_owned())
        })
    })
}

fn decode_image(path: &Path) -> Result<DynamicImage, String> {
    let bytes = match archive_member(path) {
        Some((archive, member)) => Some(crate::datasets::archive::read_member(
            archive, &member, MAX_MEMBER,
        )?),
        None => None,
    };
    match &bytes {
        Some(b) => decode_from(image::ImageReader::new(std::io::Cursor::new(b.as_slice()))),
        None => {
            decode_from(image::ImageReader::open(path).map_err(|e| format!("cannot open: {e}"))?)
        }
    }
}

fn decode_from<R: std::io::BufRead + std::io::Seek>(
    reader: image::ImageReader<R>,
) -> Result<DynamicImage, String> {
    let mut reader = reader
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err(
            "no preview: not an image format dpgui can decode (videos are not previewed)".into(),
        );
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| format!("cannot decode: {e}"))?;
    Ok(if img.width() > THUMB || img.height() > THUMB {
        img.thumbnail(THUMB, THUMB)
    } else {
        img
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::buffer::Buffer;
    use ratatui::widgets::Widget;

    /// What each protocol puts into the terminal for a preview: its own escape sequence (what a
    /// kitty, sixel or iTerm2 terminal decodes), or coloured half blocks.
    #[test]
    fn each_protocol_emits_its_own_image_sequence() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            64,
            48,
            image::Rgb([250, 20, 20]),
        ));
        let area = Rect::new(0, 0, 20, 10);
        for (protocol, signature) in [
            (ProtocolType::Kitty, "\x1b_G"),
            (ProtocolType::Sixel, "\x1bP"),
            (ProtocolType::Iterm2, "\x1b]1337;File="),
            (ProtocolType::Halfblocks, "▀"),
        ] {
            let picker = picker_for(protocol, ratatui_image::FontSize::new(10, 20));
            let p = picker
                .new_protocol(img.clone(), area.as_size(), Resize::Fit(None))
                .unwrap();
            let mut buf = Buffer::empty(area);
            ratatui_image::Image::new(&p).render(area, &mut buf);
            let all: String = buf.content().iter().map(|c| c.symbol()).collect();
            assert!(
                all.contains(signature),
                "{protocol:?}: {:?}",
                all.chars().take(40).collect::<String>()
            );
            if protocol == ProtocolType::Halfblocks {
                assert!(
                    buf.content()
                        .iter()
                        .any(|c| c.fg == ratatui::style::Color::Rgb(250, 20, 20))
                );
            } else {
                assert!(!all.contains('▀'), "{protocol:?} draws no half blocks");
            }
        }
    }
}
