//! Dataset configs (reference §6): the parsed form, shared with the Datasets tab, and its rules.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use toml_edit::{Item, TableLike, Value};

use super::keys::{self, DATASET_SETTINGS, DATASET_TOP_ONLY, DIRECTORY_ONLY};
use super::model::Expect;
use super::paths::{PathRule, check_path};
use super::text::{Ctx, value_int, value_number};
use super::{Fs, codes};

/// A value and where it is written (1-based line and character column of the value).
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub line: usize,
    pub column: usize,
    /// Byte range of the value in the text it was parsed from.
    pub span: Range<usize>,
}

/// One `resolutions` entry: a side length, or a `[width, height]` pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolution {
    Side(f64),
    Size(f64, f64),
}

impl Resolution {
    /// The side of the square with the same area (what diffusion-pipe trains on).
    pub fn side(self) -> f64 {
        match self {
            Resolution::Side(s) => s,
            Resolution::Size(w, h) => (w * h).sqrt(),
        }
    }
}

/// One `ar_buckets` entry: a width/height ratio, or a `[width, height]` pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AspectRatio {
    Ratio(f64),
    Size(f64, f64),
}

impl AspectRatio {
    pub fn ratio(self) -> f64 {
        match self {
            AspectRatio::Ratio(r) => r,
            AspectRatio::Size(w, h) => w / h,
        }
    }
}

/// The settings a dataset config has at its top level, each overridable per `[[directory]]`.
/// `None`: not written at this level.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatasetSettings {
    pub resolutions: Option<Located<Vec<Resolution>>>,
    pub enable_ar_bucket: Option<Located<bool>>,
    pub min_ar: Option<Located<f64>>,
    pub max_ar: Option<Located<f64>>,
    pub num_ar_buckets: Option<Located<i64>>,
    pub ar_buckets: Option<Located<Vec<AspectRatio>>>,
    pub frame_buckets: Option<Located<Vec<i64>>>,
    /// `[width, height, frames]` each.
    pub size_buckets: Option<Located<Vec<[i64; 3]>>>,
    pub num_repeats: Option<Located<f64>>,
    pub caption_prefix: Option<Located<String>>,
    pub shuffle_tags: Option<Located<bool>>,
    pub skip_empty_caption: Option<Located<bool>>,
    pub cache_shuffle_num: Option<Located<i64>>,
    pub cache_shuffle_delimiter: Option<Located<String>>,
    pub shuffle_metadata: Option<Located<bool>>,
    pub online_captions: Option<Located<bool>>,
}

/// One `[[directory]]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirectoryConfig {
    /// Where the `[[directory]]` header (or inline table) starts.
    pub line: usize,
    pub column: usize,
    /// Byte range of the header (or inline table).
    pub span: Range<usize>,
    pub path: Option<Located<String>>,
    pub mask_path: Option<Located<String>>,
    pub control_path: Option<Located<String>>,
    pub default_mask_file: Option<Located<String>>,
    /// This directory's own settings (overriding the top level).
    pub overrides: DatasetSettings,
}

/// A dataset config as diffusion-pipe reads it. Values of the wrong type are left out (`None`),
/// and so are invalid entries of lists; the linter reports them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatasetConfig {
    /// Top-level settings (the defaults of every directory).
    pub settings: DatasetSettings,
    pub subsample_ratio: Option<Located<f64>>,
    pub directories: Vec<DirectoryConfig>,
}

/// A directory's settings after merging with the top level and applying diffusion-pipe's
/// defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveDirectory {
    pub path: Option<String>,
    pub mask_path: Option<String>,
    pub control_path: Option<String>,
    pub default_mask_file: Option<String>,
    /// Empty when none is set (then `size_buckets` must be).
    pub resolutions: Vec<Resolution>,
    pub enable_ar_bucket: bool,
    pub min_ar: Option<f64>,
    pub max_ar: Option<f64>,
    pub num_ar_buckets: Option<i64>,
    pub ar_buckets: Option<Vec<AspectRatio>>,
    /// Sorted, de-duplicated, always holding 1.
    pub frame_buckets: Vec<i64>,
    pub size_buckets: Option<Vec<[i64; 3]>>,
    pub num_repeats: f64,
    pub caption_prefix: String,
    pub shuffle_tags: bool,
    pub skip_empty_caption: bool,
    pub cache_shuffle_num: i64,
    pub cache_shuffle_delimiter: String,
}

impl DirectoryConfig {
    /// This directory's settings merged over `dataset`'s top level, with defaults.
    pub fn effective(&self, dataset: &DatasetConfig) -> EffectiveDirectory {
        let (o, t) = (&self.overrides, &dataset.settings);
        macro_rules! pick {
            ($f:ident) => {
                o.$f.as_ref().or(t.$f.as_ref()).map(|l| l.value.clone())
            };
        }
        let mut frame_buckets = pick!(frame_buckets).unwrap_or_default();
        frame_buckets.push(1);
        frame_buckets.sort_unstable();
        frame_buckets.dedup();
        EffectiveDirectory {
            path: self.path.as_ref().map(|l| l.value.clone()),
            mask_path: self.mask_path.as_ref().map(|l| l.value.clone()),
            control_path: self.control_path.as_ref().map(|l| l.value.clone()),
            default_mask_file: self.default_mask_file.as_ref().map(|l| l.value.clone()),
            resolutions: pick!(resolutions).unwrap_or_default(),
            enable_ar_bucket: pick!(enable_ar_bucket).unwrap_or(false),
            min_ar: pick!(min_ar),
            max_ar: pick!(max_ar),
            num_ar_buckets: pick!(num_ar_buckets),
            ar_buckets: pick!(ar_buckets),
            frame_buckets,
            size_buckets: pick!(size_buckets),
            num_repeats: pick!(num_repeats).unwrap_or(1.0),
            caption_prefix: pick!(caption_prefix).unwrap_or_default(),
            shuffle_tags: pick!(shuffle_tags).unwrap_or(false),
            skip_empty_caption: pick!(skip_empty_caption).unwrap_or(true),
            cache_shuffle_num: pick!(cache_shuffle_num).unwrap_or(0),
            cache_shuffle_delimiter: pick!(cache_shuffle_delimiter)
                .unwrap_or_else(|| ", ".to_string()),
        }
    }
}

/// A dataset config that could not be read at all (a TOML syntax error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses a dataset config. Only a syntax error fails; values of the wrong type are left out.
pub fn parse_dataset(text: &str) -> Result<DatasetConfig, ParseError> {
    let mut ctx = Ctx::new(Path::new(""), text);
    let Some(doc) = ctx.parse() else {
        let d = ctx.out.pop().expect("a syntax error is reported");
        return Err(ParseError {
            line: d.line,
            column: d.column,
            message: d.message,
        });
    };
    Ok(read(&mut ctx, doc.as_table()))
}

/// Lints a dataset config in `ctx` (its file and text).
pub(crate) fn check(ctx: &mut Ctx<'_>, base: &Path, fs: &dyn Fs) {
    let Some(doc) = ctx.parse() else {
        return;
    };
    super::text::check_arrays(ctx, doc.as_item());
    let config = read(ctx, doc.as_table());
    rules(ctx, &config, base, fs);
}

// ---------------------------------------------------------------------------------------------
// Reading, with type checks

fn located<T>(ctx: &Ctx<'_>, value: T, span: Option<Range<usize>>) -> Located<T> {
    let span = span.unwrap_or(0..0);
    let (line, column) = ctx.position(span.start);
    Located {
        value,
        line,
        column,
        span,
    }
}

fn read(ctx: &mut Ctx<'_>, top: &dyn TableLike) -> DatasetConfig {
    keys::report_unknown(ctx, top, &[DATASET_SETTINGS, DATASET_TOP_ONLY], "", false);
    let settings = read_settings(ctx, top, "");
    let subsample_ratio =
        top.get("subsample_ratio")
            .and_then(|item| match positive(ctx, item, "subsample_ratio") {
                Some(v) if v > 1.0 => {
                    ctx.error(
                        item.span(),
                        codes::INVALID_VALUE,
                        format!(
                            "`subsample_ratio` is {v}; it is a fraction of the dataset (0 to 1)"
                        ),
                        "set `subsample_ratio` between 0 and 1".to_string(),
                    );
                    None
                }
                Some(v) => Some(located(ctx, v, item.span())),
                None => None,
            });
    let mut directories = Vec::new();
    match top.get("directory") {
        None => {}
        Some(Item::ArrayOfTables(a)) => {
            for t in a.iter() {
                directories.push(read_directory(ctx, t, t.span()));
            }
        }
        Some(item @ Item::Value(Value::Array(a))) => {
            for v in a.iter() {
                match v.as_inline_table() {
                    Some(t) => directories.push(read_directory(ctx, t, v.span())),
                    None => ctx.wrong_type(
                        "directory",
                        item,
                        "an array of tables ([[directory]] with path = ...)",
                    ),
                }
            }
        }
        Some(item) => ctx.wrong_type(
            "directory",
            item,
            "an array of tables ([[directory]] with path = ...)",
        ),
    }
    DatasetConfig {
        settings,
        subsample_ratio,
        directories,
    }
}

fn read_directory(
    ctx: &mut Ctx<'_>,
    t: &dyn TableLike,
    span: Option<Range<usize>>,
) -> DirectoryConfig {
    keys::report_unknown(
        ctx,
        t,
        &[DIRECTORY_ONLY, DATASET_SETTINGS],
        " in [[directory]]",
        false,
    );
    let span = span.unwrap_or(0..0);
    let (line, column) = ctx.position(span.start);
    let mut s = |key: &str| string(ctx, t, key, "[[directory]] ");
    DirectoryConfig {
        line,
        column,
        span,
        path: s("path"),
        mask_path: s("mask_path"),
        control_path: s("control_path"),
        default_mask_file: s("default_mask_file"),
        overrides: read_settings(ctx, t, "[[directory]] "),
    }
}

fn string(
    ctx: &mut Ctx<'_>,
    t: &dyn TableLike,
    key: &str,
    section: &str,
) -> Option<Located<String>> {
    let item = t.get(key)?;
    match item.as_str() {
        Some(s) => Some(located(ctx, s.to_string(), item.span())),
        None => {
            ctx.wrong_type(&format!("{section}{key}"), item, "a string");
            None
        }
    }
}

fn boolean(
    ctx: &mut Ctx<'_>,
    t: &dyn TableLike,
    key: &str,
    section: &str,
) -> Option<Located<bool>> {
    let item = t.get(key)?;
    match item.as_bool() {
        Some(b) => Some(located(ctx, b, item.span())),
        None => {
            ctx.wrong_type(
                &format!("{section}{key}"),
                item,
                "a boolean (true or false)",
            );
            None
        }
    }
}

/// A number > 0, or a report.
fn positive(ctx: &mut Ctx<'_>, item: &Item, key: &str) -> Option<f64> {
    let n = match item {
        Item::Value(v) => value_number(v),
        _ => None,
    };
    match n {
        Some(n) if n > 0.0 => Some(n),
        Some(n) => {
            ctx.error(
                item.span(),
                codes::INVALID_VALUE,
                format!("`{key}` is {n}; it must be greater than 0"),
                format!("set `{key}` to a positive number"),
            );
            None
        }
        None => {
            ctx.wrong_type(key, item, "a number");
            None
        }
    }
}

fn int_at_least(
    ctx: &mut Ctx<'_>,
    item: &Item,
    key: &str,
    min: i64,
    code: &'static str,
) -> Option<i64> {
    let n = match item {
        Item::Value(v) => value_int(v),
        _ => None,
    };
    match n {
        Some(n) if n >= min => Some(n),
        Some(n) => {
            ctx.error(
                item.span(),
                code,
                format!("`{key}` is {n}; it must be at least {min}"),
                format!("set `{key}` to {min} or more"),
            );
            None
        }
        None => {
            ctx.wrong_type(key, item, "an integer");
            None
        }
    }
}

/// Positive numbers, or `[a, b]` pairs of positive numbers (invalid entries are reported and left
/// out).
fn numbers_or_pairs(
    ctx: &mut Ctx<'_>,
    item: &Item,
    key: &str,
    what: &str,
) -> Option<Vec<(f64, Option<f64>)>> {
    let Some(a) = item.as_array() else {
        ctx.wrong_type(key, item, &format!("an array ({what})"));
        return None;
    };
    let mut out = Vec::with_capacity(a.len());
    for v in a.iter() {
        if let Some(n) = value_number(v)
            && n > 0.0
        {
            out.push((n, None));
            continue;
        }
        if let Some(p) = v.as_array() {
            let nums: Vec<f64> = p.iter().filter_map(value_number).collect();
            if p.len() == 2 && nums.len() == 2 && nums.iter().all(|n| *n > 0.0) {
                out.push((nums[0], Some(nums[1])));
                continue;
            }
        }
        ctx.error(
            v.span(),
            codes::INVALID_VALUE,
            format!("`{key}` entry {} is not {what}", v.to_string().trim()),
            format!("write each `{key}` entry as {what}"),
        );
    }
    // Mixed numbers and pairs are reported by `text::check_arrays` (diffusion-pipe's TOML
    // reader rejects them); the values are still usable here.
    Some(out)
}

fn read_settings(ctx: &mut Ctx<'_>, t: &dyn TableLike, section: &str) -> DatasetSettings {
    let mut s = DatasetSettings::default();
    let label = |k: &str| format!("{section}{k}");
    if let Some(item) = t.get("resolutions") {
        let k = label("resolutions");
        if let Some(v) = numbers_or_pairs(ctx, item, &k, "a side length or a [width, height] pair")
        {
            if v.is_empty() {
                ctx.error(
                    item.span(),
                    codes::INVALID_VALUE,
                    format!("`{k}` is empty: no size would be trained"),
                    "list at least one resolution, e.g. resolutions = [512]".to_string(),
                );
            }
            let v = v
                .into_iter()
                .map(|(a, b)| b.map_or(Resolution::Side(a), |b| Resolution::Size(a, b)))
                .collect();
            s.resolutions = Some(located(ctx, v, item.span()));
        }
    }
    s.enable_ar_bucket = boolean(ctx, t, "enable_ar_bucket", section);
    for (key, slot) in [("min_ar", &mut s.min_ar), ("max_ar", &mut s.max_ar)] {
        if let Some(item) = t.get(key) {
            *slot = positive(ctx, item, &label(key)).map(|v| located(ctx, v, item.span()));
        }
    }
    if let Some(item) = t.get("num_ar_buckets") {
        s.num_ar_buckets =
            int_at_least(ctx, item, &label("num_ar_buckets"), 1, codes::INVALID_VALUE)
                .map(|v| located(ctx, v, item.span()));
    }
    if let Some(item) = t.get("ar_buckets") {
        let k = label("ar_buckets");
        if let Some(v) = numbers_or_pairs(
            ctx,
            item,
            &k,
            "a width/height ratio or a [width, height] pair",
        ) {
            let v = v
                .into_iter()
                .map(|(a, b)| b.map_or(AspectRatio::Ratio(a), |b| AspectRatio::Size(a, b)))
                .collect();
            s.ar_buckets = Some(located(ctx, v, item.span()));
        }
    }
    if let Some(item) = t.get("frame_buckets") {
        let k = label("frame_buckets");
        match item.as_array() {
            None => ctx.wrong_type(&k, item, "an array of frame counts, e.g. [1, 33]"),
            Some(a) => {
                let mut v = Vec::with_capacity(a.len());
                for e in a.iter() {
                    match value_int(e) {
                        Some(n) if n >= 1 => v.push(n),
                        _ => ctx.error(
                            e.span(),
                            codes::FRAME_BUCKETS,
                            format!(
                                "`{k}` entry {} is not a frame count (a whole number, 1 or more)",
                                e.to_string().trim()
                            ),
                            "write frame buckets as whole numbers, e.g. frame_buckets = [1, 33]"
                                .to_string(),
                        ),
                    }
                }
                s.frame_buckets = Some(located(ctx, v, item.span()));
            }
        }
    }
    if let Some(item) = t.get("size_buckets") {
        let k = label("size_buckets");
        match item.as_array() {
            None => ctx.wrong_type(&k, item, "an array of [width, height, frames]"),
            Some(a) => {
                let mut v = Vec::with_capacity(a.len());
                for e in a.iter() {
                    let triple: Option<[i64; 3]> = e.as_array().and_then(|p| {
                        let n: Vec<i64> =
                            p.iter().filter_map(value_int).filter(|n| *n > 0).collect();
                        (p.len() == 3 && n.len() == 3).then(|| [n[0], n[1], n[2]])
                    });
                    match triple {
                        Some(t) => v.push(t),
                        None => ctx.error(
                            e.span(),
                            codes::SIZE_BUCKETS,
                            format!("`{k}` entry {} is not [width, height, frames] (three positive whole numbers)", e.to_string().trim()),
                            "write each size bucket as [width, height, frames], e.g. [960, 960, 1]".to_string(),
                        ),
                    }
                }
                s.size_buckets = Some(located(ctx, v, item.span()));
            }
        }
    }
    if let Some(item) = t.get("num_repeats") {
        s.num_repeats =
            positive(ctx, item, &label("num_repeats")).map(|v| located(ctx, v, item.span()));
    }
    s.caption_prefix = string(ctx, t, "caption_prefix", section);
    s.shuffle_tags = boolean(ctx, t, "shuffle_tags", section);
    s.skip_empty_caption = boolean(ctx, t, "skip_empty_caption", section);
    if let Some(item) = t.get("cache_shuffle_num") {
        s.cache_shuffle_num = int_at_least(
            ctx,
            item,
            &label("cache_shuffle_num"),
            0,
            codes::INVALID_VALUE,
        )
        .map(|v| located(ctx, v, item.span()));
    }
    s.cache_shuffle_delimiter = string(ctx, t, "cache_shuffle_delimiter", section);
    s.shuffle_metadata = boolean(ctx, t, "shuffle_metadata", section);
    s.online_captions = boolean(ctx, t, "online_captions", section);
    s
}

// ---------------------------------------------------------------------------------------------
// Rules across values

fn at<T>(l: &Located<T>) -> Option<Range<usize>> {
    Some(l.span.clone())
}

/// Emits each (place, code) once: top-level settings apply to every directory.
struct Once(HashSet<(usize, &'static str)>);

impl Once {
    fn first(&mut self, span: &Option<Range<usize>>, code: &'static str) -> bool {
        self.0.insert((span.as_ref().map_or(0, |s| s.start), code))
    }
}

fn rules(ctx: &mut Ctx<'_>, config: &DatasetConfig, base: &Path, fs: &dyn Fs) {
    let top = &config.settings;
    let mut once = Once(HashSet::new());
    if config.directories.is_empty() {
        ctx.error(
            Some(0..0),
            codes::MISSING_KEY,
            "no [[directory]]: the dataset has nothing to train on".to_string(),
            "add a [[directory]] table with path = '/path/to/images'".to_string(),
        );
    }
    // Levels that set more than three resolutions.
    for r in std::iter::once(&top.resolutions)
        .chain(config.directories.iter().map(|d| &d.overrides.resolutions))
        .flatten()
    {
        if r.value.len() > 3 {
            ctx.warn(
                at(r),
                codes::TOO_MANY_RESOLUTIONS,
                format!(
                    "{} resolutions: each one duplicates the dataset, and diffusion-pipe stops at \
                     more than 3 unless launched with --i_know_what_i_am_doing",
                    r.value.len()
                ),
                "keep at most 3 resolutions (see the comments in examples/dataset.toml)"
                    .to_string(),
            );
        }
    }
    let all_lack_resolutions = top.resolutions.is_none()
        && config
            .directories
            .iter()
            .all(|d| d.overrides.resolutions.is_none() && d.overrides.size_buckets.is_none())
        && top.size_buckets.is_none();
    if all_lack_resolutions && !config.directories.is_empty() {
        ctx.error(
            Some(0..0),
            codes::MISSING_KEY,
            "`resolutions` is missing (and no size_buckets): diffusion-pipe fails with KeyError"
                .to_string(),
            "add e.g. resolutions = [512] at the top of the dataset config".to_string(),
        );
    }
    for dir in &config.directories {
        let header = Some(dir.span.clone());
        check_directory_paths(ctx, dir, &header, base, fs);
        let o = &dir.overrides;
        // size_buckets replace resolutions and AR bucketing entirely.
        if let Some(sb) = &o.size_buckets {
            ignored_by_size_buckets(ctx, &mut once, "[[directory]] ", o, sb);
            continue;
        }
        if let Some(sb) = &top.size_buckets {
            ignored_by_size_buckets(ctx, &mut once, "", top, sb);
            ignored_by_size_buckets(ctx, &mut once, "[[directory]] ", o, sb);
            continue;
        }
        if !all_lack_resolutions
            && top.resolutions.is_none()
            && once.first(&header, codes::MISSING_KEY)
        {
            if o.resolutions.is_none() {
                ctx.error(
                    header.clone(),
                    codes::MISSING_KEY,
                    "this directory has no `resolutions` (neither here nor at the top level) and \
                     no size_buckets: diffusion-pipe fails with KeyError"
                        .to_string(),
                    "add resolutions = [512] at the top level".to_string(),
                );
            } else {
                // utils/dataset.py: directory_config.get('resolutions',
                // dataset_config['resolutions']): the default is looked up first.
                ctx.error(
                    header.clone(),
                    codes::MISSING_KEY,
                    "diffusion-pipe reads the top-level `resolutions` even when a directory sets \
                     its own: without one at the top it fails with KeyError"
                        .to_string(),
                    "add resolutions = [...] at the top level too (this directory's own still wins)"
                        .to_string(),
                );
            }
        }
        ar_rules(ctx, &mut once, top, o);
    }
}

fn check_directory_paths(
    ctx: &mut Ctx<'_>,
    dir: &DirectoryConfig,
    header: &Option<Range<usize>>,
    base: &Path,
    fs: &dyn Fs,
) {
    match &dir.path {
        None => ctx.error(
            header.clone(),
            codes::MISSING_KEY,
            "[[directory]] without `path`".to_string(),
            "add path = '/path/to/images' (a directory of media and caption files)".to_string(),
        ),
        Some(p) => {
            check_path(
                ctx,
                base,
                fs,
                &p.value,
                at(p),
                &PathRule {
                    label: "[[directory]] path",
                    key: "path",
                    expect: Expect::Dir,
                    may_be_missing: false,
                    hub_check: false,
                    note: "images/videos and their captions",
                },
            );
        }
    }
    let others = [
        (
            &dir.mask_path,
            "mask_path",
            Expect::Dir,
            "mask images named like the training images",
        ),
        (
            &dir.control_path,
            "control_path",
            Expect::Dir,
            "control/context images named like the targets",
        ),
        (
            &dir.default_mask_file,
            "default_mask_file",
            Expect::File,
            "the mask used when an image has none",
        ),
    ];
    for (value, key, expect, note) in others {
        if let Some(p) = value {
            let label = format!("[[directory]] {key}");
            check_path(
                ctx,
                base,
                fs,
                &p.value,
                at(p),
                &PathRule {
                    label: &label,
                    key,
                    expect,
                    may_be_missing: false,
                    hub_check: false,
                    note,
                },
            );
        }
    }
}

fn ignored_by_size_buckets(
    ctx: &mut Ctx<'_>,
    once: &mut Once,
    level: &str,
    s: &DatasetSettings,
    sb: &Located<Vec<[i64; 3]>>,
) {
    let ignored: [(&str, Option<Range<usize>>); 6] = [
        ("resolutions", s.resolutions.as_ref().and_then(at)),
        ("enable_ar_bucket", s.enable_ar_bucket.as_ref().and_then(at)),
        ("min_ar", s.min_ar.as_ref().and_then(at)),
        ("max_ar", s.max_ar.as_ref().and_then(at)),
        ("num_ar_buckets", s.num_ar_buckets.as_ref().and_then(at)),
        ("ar_buckets", s.ar_buckets.as_ref().and_then(at)),
    ];
    for (key, span) in ignored {
        if span.is_some() && once.first(&span, codes::SIZE_BUCKETS) {
            ctx.warn(
                span,
                codes::SIZE_BUCKETS,
                format!(
                    "`{level}{key}` is ignored: size_buckets (line {}) set the sizes and aspect \
                     ratios directly",
                    sb.line
                ),
                format!("remove `{key}`, or remove size_buckets"),
            );
        }
    }
}

fn ar_rules(ctx: &mut Ctx<'_>, once: &mut Once, top: &DatasetSettings, o: &DatasetSettings) {
    let enable = o
        .enable_ar_bucket
        .as_ref()
        .or(top.enable_ar_bucket.as_ref());
    let enabled = enable.is_some_and(|e| e.value);
    let range_keys = |s: &DatasetSettings| -> Vec<(&'static str, Option<Range<usize>>)> {
        [
            ("min_ar", s.min_ar.as_ref().and_then(at)),
            ("max_ar", s.max_ar.as_ref().and_then(at)),
            ("num_ar_buckets", s.num_ar_buckets.as_ref().and_then(at)),
        ]
        .into_iter()
        .filter(|(_, sp)| sp.is_some())
        .collect()
    };
    if !enabled {
        for s in [top, o] {
            let mut set = range_keys(s);
            if let Some(a) = &s.ar_buckets {
                set.push(("ar_buckets", at(a)));
            }
            for (key, span) in set {
                if once.first(&span, codes::AR_BUCKETS) {
                    ctx.warn(
                        span,
                        codes::AR_BUCKETS,
                        format!(
                            "`{key}` is ignored: enable_ar_bucket is not true, so every image is \
                             cropped to aspect ratio 1.0"
                        ),
                        "set enable_ar_bucket = true to use aspect-ratio buckets".to_string(),
                    );
                }
            }
        }
        return;
    }
    // Same level: ar_buckets win over the range.
    for s in [top, o] {
        if let Some(a) = &s.ar_buckets {
            for (key, span) in range_keys(s) {
                if once.first(&span, codes::AR_BUCKETS) {
                    ctx.warn(
                        span,
                        codes::AR_BUCKETS,
                        format!(
                            "`{key}` is ignored: ar_buckets (line {}) is set and wins",
                            a.line
                        ),
                        "remove either ar_buckets or min_ar/max_ar/num_ar_buckets".to_string(),
                    );
                }
            }
        }
    }
    let ar_buckets = o.ar_buckets.as_ref().or(top.ar_buckets.as_ref());
    if ar_buckets.is_some() {
        return;
    }
    let missing: Vec<&str> = [
        ("min_ar", o.min_ar.is_some() || top.min_ar.is_some()),
        ("max_ar", o.max_ar.is_some() || top.max_ar.is_some()),
        (
            "num_ar_buckets",
            o.num_ar_buckets.is_some() || top.num_ar_buckets.is_some(),
        ),
    ]
    .into_iter()
    .filter(|(_, set)| !set)
    .map(|(k, _)| k)
    .collect();
    let span = enable.and_then(at);
    if !missing.is_empty() && once.first(&span, codes::AR_BUCKETS) {
        ctx.error(
            span,
            codes::AR_BUCKETS,
            format!(
                "enable_ar_bucket = true needs min_ar, max_ar and num_ar_buckets (or ar_buckets); \
                 missing: {} (diffusion-pipe fails with KeyError)",
                missing.join(", ")
            ),
            "add e.g. min_ar = 0.5, max_ar = 2.0, num_ar_buckets = 7".to_string(),
        );
    }
}

/// Does `text` name a key that is a dataset-only key? (Used by `config_kind`.)
pub(crate) fn is_dataset_key(key: &str) -> bool {
    DATASET_SETTINGS.contains(&key) || key == "directory"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_merges_directories() {
        let t = "resolutions = [[512, 512], [1280, 720]]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 7\nframe_buckets = [33]\nnum_repeats = 2\n\n[[directory]]\npath = '/a'\nnum_repeats = 5\nresolutions = [256]\n\n[[directory]]\npath = '/b'\nmask_path = '/m'\n";
        let c = parse_dataset(t).unwrap();
        assert_eq!(c.directories.len(), 2);
        let r = c.settings.resolutions.as_ref().unwrap();
        assert_eq!(r.line, 1);
        assert_eq!(r.column, 15);
        assert_eq!(r.value[0].side(), 512.0);
        assert_eq!(r.value[1].side(), (1280.0f64 * 720.0).sqrt());
        let a = c.directories[0].effective(&c);
        assert_eq!(a.num_repeats, 5.0);
        assert_eq!(a.resolutions, vec![Resolution::Side(256.0)]);
        assert_eq!(a.frame_buckets, vec![1, 33]);
        assert!(a.enable_ar_bucket);
        assert!(a.skip_empty_caption);
        let b = c.directories[1].effective(&c);
        assert_eq!(b.num_repeats, 2.0);
        assert_eq!(b.mask_path.as_deref(), Some("/m"));
        assert_eq!(c.directories[1].line, 14);
        assert_eq!(c.directories[1].path.as_ref().unwrap().line, 15);
        let e = parse_dataset("resolutions = [512\n[[directory]]\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn inline_directory_array_is_read() {
        let c = parse_dataset("resolutions = [512]\ndirectory = [{path = '/x'}]\n").unwrap();
        assert_eq!(c.directories[0].path.as_ref().unwrap().value, "/x");
        assert_eq!(AspectRatio::Size(3.0, 2.0).ratio(), 1.5);
    }
}
