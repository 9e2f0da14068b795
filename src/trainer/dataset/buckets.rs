//! diffusion-pipe's size buckets, exactly: where each medium lands, how many items every size
//! bucket holds after `num_repeats`, how much the global batch cuts off, and the steps per epoch.
//! Pure. Follows utils/dataset.py (`DirectoryDataset`, `ARBucketDataset`, `SizeBucketDataset`,
//! `ConcatenatedBatchedDataset`, `Dataset.post_init`), train.py and the model classes at the
//! pinned commit; written from those facts, not from the (GPL) code.
//!
//! What decides the numbers:
//! - Aspect ratios: `size_buckets` → w/h of each; AR bucketing off → 1.0; a non-empty
//!   `ar_buckets` → its values (a pair → w/h); else `np.geomspace(min_ar, max_ar, num_ar_buckets)`.
//!   Rounded to 3 decimals, de-duplicated, sorted. The rounding is Python's `round` for values
//!   that are Python floats (`ar_buckets`, `resolutions`) but NumPy's (`rint(x·1000)/1000`) for
//!   NumPy values (geomspace, size buckets): 1.3625 is 1.363 in the first and 1.362 in the second.
//! - Resolutions: a side, or sqrt(w·h) of a pair; rounded and sorted the same (Python) way.
//! - A medium goes to the AR nearest in log space (first on ties) and to the largest frame
//!   bucket ≤ its frames; "video" means frames > 1, and a video landing in bucket 1 is skipped
//!   ("too short"), as is one shorter than every bucket. A video's frames are counted at the
//!   model's rate: int(source frames × model fps / source fps), the count its loader resamples
//!   to (diffusion-pipe PR #543; before it, int(model fps × duration)).
//! - With `size_buckets` diffusion-pipe sorts them by frames, longest first, and walks
//!   `size_buckets[argsort(distance to each *distinct, sorted* AR)]`: the index is into the
//!   de-duplicated AR list, not the bucket list, so candidates are the first K buckets in an
//!   order that need not match their own ratios (in Cosmos's example a square image lands in
//!   704×960). That is what it trains on, so that is what is computed here.
//! - Each (AR, frames) is trained at every resolution r: w = sqrt(r²·ar), h = r²/w, each rounded
//!   to the nearest multiple of the model's `pixels_round_to_multiple` with Python's `round`
//!   (half to even: 40/16 = 2.5 → 32).
//! - Items of one directory in one size bucket = int(captions × num_repeats), truncated per
//!   directory and per resolution; a size bucket sums its directories.
//! - Global batch = (image_)micro × gradient_accumulation_steps × GPUs / pipeline_stages; a
//!   per-resolution list takes the entry nearest sqrt(w·h) (first on ties; a repeated resolution
//!   keeps its first place and its last value). Each bucket is cut to a multiple of it; steps per
//!   epoch = Σ items / global batch, then × `subsample_ratio` (truncated) when set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::trainer::lint::{Batch, BatchSettings, EffectiveDirectory};

/// More AR buckets than this is no real config; refused rather than allocated.
const MAX_AR_BUCKETS: i64 = 100_000;

// ---------------------------------------------------------------------------------------------
// Media and models

/// One medium as diffusion-pipe sees it: `frames` is 1 for images; for videos the frame count
/// already converted to the model's frame rate ([`convert_frames`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Medium {
    pub width: u32,
    pub height: u32,
    pub frames: u32,
}

impl Medium {
    pub fn image(width: u32, height: u32) -> Self {
        Medium {
            width,
            height,
            frames: 1,
        }
    }

    /// A video, its frames converted to `model_fps`; None where the model reads no video
    /// ([`convert_frames`]).
    pub fn video(
        width: u32,
        height: u32,
        source_frames: u64,
        source_fps: f64,
        model_fps: Option<f64>,
    ) -> Option<Self> {
        let frames = convert_frames(source_frames, source_fps, model_fps)?;
        Some(Medium {
            width,
            height,
            frames: u32::try_from(frames).unwrap_or(u32::MAX),
        })
    }
}

/// The frame rate diffusion-pipe resamples videos to, by `[model] type` (the model class's
/// `framerate`). None: an image model, whose dataset skips every video. Wan's depends on the
/// checkpoint too: use [`ModelFacts::fps`].
pub fn model_fps(model_type: &str) -> Option<f64> {
    match model_type {
        "ltx-video" => Some(25.0),
        "hunyuan-video" | "cosmos" | "hunyuan_video_15" | "ltx2" | "minimax_h3" => Some(24.0),
        "wan" | "cosmos_predict2" | "anima" => Some(16.0),
        _ => None,
    }
}

/// A video's frame count at the model's rate: int(frames × model_fps / source_fps), the count
/// diffusion-pipe buckets by (and resamples to). None when the model reads no video, or the
/// source rate is not a positive number (diffusion-pipe skips such a file).
pub fn convert_frames(source_frames: u64, source_fps: f64, model_fps: Option<f64>) -> Option<u64> {
    let fps = model_fps?;
    let usable = |x: f64| x.is_finite() && x > 0.0;
    if !usable(fps) || !usable(source_fps) {
        return None;
    }
    // Truncation toward zero, as Python's int(); `as` saturates.
    Some((source_frames as f64 * fps / source_fps) as u64)
}

/// What the bucket maths needs to know about the model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelFacts {
    /// `[model] type`.
    pub model_type: String,
    /// `[model] ckpt_path` as written (Wan: a name containing "skyreels" means 24 fps).
    pub ckpt_path: Option<String>,
    /// `[model] transformer_path` as written (Wan: where config.json may be).
    pub transformer_path: Option<String>,
    /// Wan only: `model_type` of the checkpoint's config.json ("t2v", "i2v", "flf2v", "ti2v"),
    /// read by the caller with [`wan_checkpoint_type`]; "ti2v" is Wan 2.2 5B.
    pub wan_checkpoint_type: Option<String>,
}

impl ModelFacts {
    pub fn new(model_type: &str) -> Self {
        ModelFacts {
            model_type: model_type.to_string(),
            ..ModelFacts::default()
        }
    }

    /// From a main config's settings; None without `[model] type`.
    pub fn from_settings(settings: &BatchSettings) -> Option<Self> {
        Some(ModelFacts {
            model_type: settings.model_type.clone()?,
            ckpt_path: settings.ckpt_path.clone(),
            transformer_path: settings.transformer_path.clone(),
            wan_checkpoint_type: None,
        })
    }

    /// Wan 2.2 5B (TI2V): 24 fps and sizes rounded to 32.
    pub fn is_wan22_5b(&self) -> bool {
        self.model_type == "wan" && self.wan_checkpoint_type.as_deref() == Some("ti2v")
    }

    /// SkyReels V2 on the Wan code: told apart only by the checkpoint folder's name.
    pub fn is_skyreels(&self) -> bool {
        self.model_type == "wan"
            && self.ckpt_path.as_deref().is_some_and(|p| {
                Path::new(p)
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().to_lowercase().contains("skyreels"))
            })
    }

    /// The model's video frame rate ([`model_fps`], with Wan's variants).
    pub fn fps(&self) -> Option<f64> {
        if self.is_wan22_5b() || self.is_skyreels() {
            return Some(24.0);
        }
        model_fps(&self.model_type)
    }

    /// Wan: where diffusion-pipe reads the checkpoint's config.json, in its order; the first
    /// that exists is the one (`transformer_path/config.json` counts only when
    /// `transformer_path` is a directory, and a file path joined with it never exists). Paths
    /// are as written: relative ones are relative to diffusion-pipe's working directory.
    pub fn wan_config_candidates(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if self.model_type != "wan" {
            return out;
        }
        if let Some(t) = &self.transformer_path {
            out.push(Path::new(t).join("config.json"));
        }
        if let Some(c) = &self.ckpt_path {
            out.push(Path::new(c).join("config.json"));
            out.push(Path::new(c).join("low_noise_model").join("config.json"));
        }
        out
    }
}

/// `model_type` from a Wan checkpoint's config.json; None when the text is not such a file.
pub fn wan_checkpoint_type(config_json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(config_json).ok()?;
    v.get("model_type")?.as_str().map(str::to_string)
}

/// The multiple bucket sides are rounded to (the model's `pixels_round_to_multiple`).
pub fn size_multiple(model: &ModelFacts) -> u32 {
    match model.model_type.as_str() {
        "ltx-video" | "hunyuan_image" => 32,
        "wan" if model.is_wan22_5b() => 32,
        _ => 16,
    }
}

// ---------------------------------------------------------------------------------------------
// Rounding, as Python and NumPy do it

/// Python's `round(x, 3)` on a float: the exact binary value rounded half to even at the third
/// decimal; Rust's `{:.3}` rounds the same way, and parsing back gives the nearest double.
fn round3_python(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.3}").parse().unwrap_or(x)
}

/// `round(np.float64, 3)`: NumPy multiplies, rounds half to even, divides.
fn round3_numpy(x: f64) -> f64 {
    (x * 1000.0).round_ties_even() / 1000.0
}

/// diffusion-pipe's `round_to_nearest_multiple`: int(round(x / m) · m), `round` being Python's
/// (half to even).
fn round_to_multiple(x: f64, multiple: u32) -> u32 {
    let m = f64::from(multiple.max(1));
    // `as` saturates (NaN → 0): absurd input gives an absurd size, never a panic.
    ((x / m).round_ties_even() * m) as u32
}

fn dedup_and_sort(mut v: Vec<f64>) -> Vec<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// `np.geomspace(start, stop, num)`: 10 to the power of a linspace of the log10s, the ends
/// set to `start` and `stop` exactly.
fn geomspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    match num {
        0 => return Vec::new(),
        1 => return vec![start],
        _ => {}
    }
    let (lo, hi) = (start.log10(), stop.log10());
    let div = (num - 1) as f64;
    let step = (hi - lo) / div;
    let mut out: Vec<f64> = (0..num)
        .map(|i| {
            let y = if step == 0.0 {
                i as f64 / div * (hi - lo) + lo
            } else {
                i as f64 * step + lo
            };
            10f64.powf(y)
        })
        .collect();
    out[0] = start;
    out[num - 1] = stop;
    out
}

/// Width and height of the size bucket of `ar` at `resolution`: area r², w = sqrt(area·ar),
/// h = area / w, each rounded to the nearest `multiple` (half to even).
pub fn bucket_size(resolution: f64, ar: f64, multiple: u32) -> (u32, u32) {
    let area = resolution * resolution;
    let w = (area * ar).sqrt();
    let h = area / w;
    (
        round_to_multiple(w, multiple),
        round_to_multiple(h, multiple),
    )
}

// ---------------------------------------------------------------------------------------------
// One directory's rules and placements

/// Where one medium goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Placement {
    /// An (aspect ratio, frame bucket) group; trained at every resolution of its directory.
    Bucket { ar: f64, frames: u32 },
    /// One of the directory's `size_buckets`, as written.
    Size {
        width: u32,
        height: u32,
        frames: u32,
    },
    /// Skipped: "video with frames=N is being skipped because it is too short".
    TooShort { frames: u32 },
    /// The rules have no bucket at all (see [`BucketRules::problem`]), or the medium has no
    /// size: diffusion-pipe would stop.
    Unplaceable,
}

/// A directory's bucket settings as diffusion-pipe derives them.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketRules {
    ars: Vec<f64>,
    log_ars: Vec<f64>,
    resolutions: Vec<f64>,
    frame_buckets: Vec<i64>,
    /// Sorted by frames, longest first (stable), as diffusion-pipe keeps them.
    size_buckets: Option<Vec<[i64; 3]>>,
    caption_copies: u64,
    num_repeats: f64,
    problem: Option<String>,
}

impl BucketRules {
    pub fn new(eff: &EffectiveDirectory) -> Self {
        let mut problem = None;
        let size_buckets = eff.size_buckets.clone().map(|mut v| {
            v.sort_by(|a, b| b[2].cmp(&a[2]));
            v
        });
        let ars: Vec<f64> = if let Some(sb) = &size_buckets {
            if sb.is_empty() {
                problem = Some("size_buckets is empty: every medium is skipped".to_string());
            }
            sb.iter()
                .map(|[w, h, _]| round3_numpy(*w as f64 / *h as f64))
                .collect()
        } else if !eff.enable_ar_bucket {
            vec![1.0]
        } else if let Some(list) = eff.ar_buckets.as_ref().filter(|l| !l.is_empty()) {
            list.iter().map(|a| round3_python(a.ratio())).collect()
        } else {
            match (eff.min_ar, eff.max_ar, eff.num_ar_buckets) {
                (Some(lo), Some(hi), Some(n))
                    if lo > 0.0 && hi > 0.0 && lo.is_finite() && hi.is_finite() =>
                {
                    if (1..=MAX_AR_BUCKETS).contains(&n) {
                        geomspace(lo, hi, n as usize)
                            .into_iter()
                            .map(round3_numpy)
                            .collect()
                    } else {
                        problem = Some(format!("num_ar_buckets is {n}"));
                        Vec::new()
                    }
                }
                _ => {
                    problem = Some(
                        "AR bucketing is on without ar_buckets, min_ar, max_ar and num_ar_buckets"
                            .to_string(),
                    );
                    Vec::new()
                }
            }
        };
        let ars = dedup_and_sort(ars);
        let log_ars = ars.iter().map(|a| a.ln()).collect();
        let resolutions = if size_buckets.is_some() {
            Vec::new()
        } else {
            let r = dedup_and_sort(
                eff.resolutions
                    .iter()
                    .map(|r| round3_python(r.side()))
                    .collect(),
            );
            if r.is_empty() && problem.is_none() {
                problem = Some("no resolutions: nothing would be trained".to_string());
            }
            r
        };
        let mut frame_buckets = eff.frame_buckets.clone();
        if !frame_buckets.contains(&1) {
            frame_buckets.push(1);
        }
        frame_buckets.sort_unstable();
        frame_buckets.dedup();
        // `cache_shuffle_num` N > 0 makes N shuffled copies of every caption; 0 keeps them
        // (so does shuffle_tags, which only turns 0 into 1); a negative N leaves none.
        let caption_copies = match eff.cache_shuffle_num {
            0 => 1,
            n if n < 0 => 0,
            n => n as u64,
        };
        BucketRules {
            ars,
            log_ars,
            resolutions,
            frame_buckets,
            size_buckets,
            caption_copies,
            num_repeats: eff.num_repeats,
            problem,
        }
    }

    /// The aspect ratios media are matched against (rounded, de-duplicated, sorted).
    pub fn aspect_ratios(&self) -> &[f64] {
        &self.ars
    }

    /// The resolutions every (AR, frames) group is trained at (empty with `size_buckets`).
    pub fn resolutions(&self) -> &[f64] {
        &self.resolutions
    }

    /// Sorted, holding 1.
    pub fn frame_buckets(&self) -> &[i64] {
        &self.frame_buckets
    }

    /// `size_buckets` in diffusion-pipe's order (longest frames first), when set.
    pub fn size_buckets(&self) -> Option<&[[i64; 3]]> {
        self.size_buckets.as_deref()
    }

    /// Items each caption becomes (`cache_shuffle_num`).
    pub fn caption_copies(&self) -> u64 {
        self.caption_copies
    }

    /// The directory's `num_repeats` (what [`DirectoryPlacements::new`] is usually given).
    pub fn num_repeats(&self) -> f64 {
        self.num_repeats
    }

    /// Why nothing (or nothing sensible) can be bucketed, when so.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Where `m` goes.
    pub fn place(&self, m: Medium) -> Placement {
        if m.width == 0 || m.height == 0 {
            return Placement::Unplaceable;
        }
        let log_ar = (f64::from(m.width) / f64::from(m.height)).ln();
        let frames = i64::from(m.frames);
        let is_video = frames > 1;
        let too_short = Placement::TooShort { frames: m.frames };
        let to_u32 = |x: i64| u32::try_from(x.max(0)).unwrap_or(u32::MAX);

        if let Some(sb) = &self.size_buckets {
            // Indices into the distinct ARs, nearest first (stable), used on the bucket list.
            let mut order: Vec<usize> = (0..self.log_ars.len()).collect();
            order.sort_by(|&a, &b| {
                (log_ar - self.log_ars[a])
                    .abs()
                    .total_cmp(&(log_ar - self.log_ars[b]).abs())
            });
            for i in order {
                let Some(&[w, h, f]) = sb.get(i) else {
                    continue;
                };
                if is_video && f == 1 {
                    continue;
                }
                if frames >= f {
                    return Placement::Size {
                        width: to_u32(w),
                        height: to_u32(h),
                        frames: to_u32(f),
                    };
                }
            }
            return too_short;
        }

        let mut best: Option<(usize, f64)> = None;
        for (i, l) in self.log_ars.iter().enumerate() {
            let d = (log_ar - l).abs();
            // Strictly smaller: the first of equals stays (np.argmin).
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((i, d));
            }
        }
        let Some((i, _)) = best else {
            return Placement::Unplaceable;
        };
        let Some(&fb) = self.frame_buckets.iter().rev().find(|&&f| f <= frames) else {
            return too_short;
        };
        if is_video && fb == 1 {
            return too_short;
        }
        Placement::Bucket {
            ar: self.ars[i],
            frames: to_u32(fb),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Batches

/// GPUs / pipeline_stages; None when the GPU count is not a positive multiple of the stages
/// (DeepSpeed refuses) or the settings are unusable.
pub fn data_parallel_size(settings: &BatchSettings, gpus: u64) -> Option<u64> {
    let stages = u64::try_from(settings.pipeline_stages?).ok()?;
    (stages > 0 && gpus > 0 && gpus.is_multiple_of(stages)).then_some(gpus / stages)
}

/// The per-GPU batch of a `w`×`h` bucket from a per-resolution list: the entry nearest
/// sqrt(w·h), first on ties, with Python dict semantics for repeated resolutions.
fn per_resolution(pairs: &[(f64, i64)], width: u32, height: u32) -> Option<i64> {
    let mut dict: Vec<(f64, i64)> = Vec::new();
    for &(r, n) in pairs {
        match dict.iter_mut().find(|e| e.0 == r) {
            Some(e) => e.1 = n,
            None => dict.push((r, n)),
        }
    }
    let size = ((u64::from(width) * u64::from(height)) as f64).sqrt();
    let mut best = None;
    let mut min = f64::INFINITY;
    for (r, n) in dict {
        let d = (r - size).abs();
        if d < min {
            min = d;
            best = Some(n);
        }
    }
    best
}

/// The global batch of one size bucket: (image_)micro × gradient_accumulation_steps ×
/// data-parallel size, the image micro batch for 1-frame buckets. None when the settings are
/// unusable or the GPU count does not fit the pipeline stages.
pub fn global_batch(
    settings: &BatchSettings,
    gpus: u64,
    width: u32,
    height: u32,
    frames: u32,
) -> Option<u64> {
    let dp = data_parallel_size(settings, gpus)?;
    let ga = u64::try_from(settings.gradient_accumulation_steps?).ok()?;
    let batch = if frames == 1 {
        settings.image_micro.as_ref()?
    } else {
        settings.micro.as_ref()?
    };
    let per_gpu = match batch {
        Batch::One(n) => *n,
        Batch::PerResolution(pairs) => per_resolution(pairs, width, height)?,
    };
    let per_gpu = u64::try_from(per_gpu).ok().filter(|n| *n > 0)?;
    per_gpu.checked_mul(ga)?.checked_mul(dp).filter(|g| *g > 0)
}

// ---------------------------------------------------------------------------------------------
// The table

/// One directory: its rules and where its media went.
#[derive(Debug, Clone, Copy)]
pub struct DirectoryPlacements<'a> {
    pub rules: &'a BucketRules,
    pub num_repeats: f64,
    /// One entry per medium.
    pub placed: &'a [Placement],
    /// Captions per medium (a `captions.json` list may hold several), index = `placed`'s;
    /// None: one each.
    pub captions: Option<&'a [u32]>,
}

impl<'a> DirectoryPlacements<'a> {
    pub fn new(rules: &'a BucketRules, num_repeats: f64, placed: &'a [Placement]) -> Self {
        DirectoryPlacements {
            rules,
            num_repeats,
            placed,
            captions: None,
        }
    }
}

/// A size bucket: `ar` is the AR group's (w/h for `size_buckets`); width and height are the
/// bucket's sides at the model's rounding multiple.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeBucket {
    pub ar: f64,
    pub width: u32,
    pub height: u32,
    pub frames: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BucketRow {
    pub bucket: SizeBucket,
    /// The (smallest) resolution that made it; sqrt(w·h) for `size_buckets`.
    pub resolution: f64,
    /// Items after num_repeats, index = directory.
    pub per_directory: Vec<u64>,
    pub items: u64,
    /// None without batch settings, or when they are unusable for this GPU count.
    pub global_batch: Option<u64>,
    /// Items trained each epoch (a multiple of the global batch); all of them without one.
    pub used: u64,
    /// Items cut off (all of them when fewer than one global batch: "completely dropped").
    pub dropped: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BucketTable {
    /// Sorted by frames, resolution, AR, width, height.
    pub rows: Vec<BucketRow>,
    /// Σ items / global batch; None without (usable) batch settings.
    pub steps_per_epoch: Option<u64>,
    /// Media skipped as too short, per directory.
    pub too_short: Vec<u64>,
    /// Media that could not be placed at all, per directory.
    pub unplaceable: Vec<u64>,
}

impl BucketTable {
    /// Steps per epoch after the dataset's `subsample_ratio`: int(steps × ratio); 0 or absent
    /// leaves them.
    pub fn steps_per_epoch_subsampled(&self, subsample_ratio: Option<f64>) -> Option<u64> {
        let steps = self.steps_per_epoch?;
        Some(match subsample_ratio {
            Some(r) if r != 0.0 => (steps as f64 * r) as u64,
            _ => steps,
        })
    }
}

/// A size bucket's identity, as diffusion-pipe groups datasets: (ar, w, h, frames) for AR
/// buckets, (w, h, frames) for `size_buckets`; the two never meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Ar {
        ar: u64,
        w: u32,
        h: u32,
        frames: u32,
    },
    Size {
        w: u32,
        h: u32,
        frames: u32,
    },
}

/// int(n × num_repeats), as diffusion-pipe truncates it; 0 for a repeat count it would refuse.
fn repeated(n: u64, num_repeats: f64) -> u64 {
    if !(num_repeats.is_finite() && num_repeats > 0.0) {
        return 0;
    }
    (n as f64 * num_repeats) as u64
}

/// The size buckets of all directories, with their items, global batches and cuts.
pub fn tabulate(
    dirs: &[DirectoryPlacements],
    model: &ModelFacts,
    batch: Option<(&BatchSettings, u64)>,
) -> BucketTable {
    let multiple = size_multiple(model);
    let n_dirs = dirs.len();
    let mut too_short = vec![0u64; n_dirs];
    let mut unplaceable = vec![0u64; n_dirs];
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut rows: Vec<BucketRow> = Vec::new();

    let mut add = |key: Key, bucket: SizeBucket, resolution: f64, d: usize, items: u64| {
        let i = *index.entry(key).or_insert_with(|| {
            rows.push(BucketRow {
                bucket,
                resolution,
                per_directory: vec![0; n_dirs],
                items: 0,
                global_batch: None,
                used: 0,
                dropped: 0,
            });
            rows.len() - 1
        });
        let row = &mut rows[i];
        row.per_directory[d] = row.per_directory[d].saturating_add(items);
        row.items = row.items.saturating_add(items);
        if resolution < row.resolution {
            row.resolution = resolution;
        }
    };

    for (d, dir) in dirs.iter().enumerate() {
        // Captions per group (the grouping diffusion-pipe caches), in first-seen order.
        let mut groups: Vec<(Placement, u64)> = Vec::new();
        let mut group_of: HashMap<Group, usize> = HashMap::new();
        for (i, p) in dir.placed.iter().enumerate() {
            let captions = dir
                .captions
                .and_then(|c| c.get(i))
                .map_or(1, |&c| u64::from(c));
            let n = captions.saturating_mul(dir.rules.caption_copies);
            match p {
                Placement::TooShort { .. } => too_short[d] += 1,
                Placement::Unplaceable => unplaceable[d] += 1,
                Placement::Bucket { ar, frames } => {
                    let g = *group_of
                        .entry(Group::Ar(ar.to_bits(), *frames))
                        .or_insert_with(|| {
                            groups.push((*p, 0));
                            groups.len() - 1
                        });
                    groups[g].1 = groups[g].1.saturating_add(n);
                }
                Placement::Size {
                    width,
                    height,
                    frames,
                } => {
                    let g = *group_of
                        .entry(Group::Size(*width, *height, *frames))
                        .or_insert_with(|| {
                            groups.push((*p, 0));
                            groups.len() - 1
                        });
                    groups[g].1 = groups[g].1.saturating_add(n);
                }
            }
        }
        for (p, n) in groups {
            let items = repeated(n, dir.num_repeats);
            match p {
                Placement::Bucket { ar, frames } => {
                    // One SizeBucketDataset per resolution, each truncated on its own.
                    for &r in &dir.rules.resolutions {
                        let (w, h) = bucket_size(r, ar, multiple);
                        let key = Key::Ar {
                            ar: ar.to_bits(),
                            w,
                            h,
                            frames,
                        };
                        let bucket = SizeBucket {
                            ar,
                            width: w,
                            height: h,
                            frames,
                        };
                        add(key, bucket, r, d, items);
                    }
                }
                Placement::Size {
                    width,
                    height,
                    frames,
                } => {
                    let key = Key::Size {
                        w: width,
                        h: height,
                        frames,
                    };
                    let bucket = SizeBucket {
                        ar: f64::from(width) / f64::from(height),
                        width,
                        height,
                        frames,
                    };
                    let r = ((u64::from(width) * u64::from(height)) as f64).sqrt();
                    add(key, bucket, r, d, items);
                }
                Placement::TooShort { .. } | Placement::Unplaceable => {}
            }
        }
    }

    let dp_ok = batch.is_some_and(|(s, gpus)| data_parallel_size(s, gpus).is_some());
    let mut steps: Option<u64> = dp_ok.then_some(0);
    for row in &mut rows {
        let b = &row.bucket;
        row.global_batch =
            batch.and_then(|(s, gpus)| global_batch(s, gpus, b.width, b.height, b.frames));
        match row.global_batch {
            Some(g) => {
                row.used = row.items / g * g;
                row.dropped = row.items - row.used;
                steps = steps.map(|s| s.saturating_add(row.items / g));
            }
            None => {
                row.used = row.items;
                row.dropped = 0;
                steps = None;
            }
        }
    }
    rows.sort_by(|a, b| {
        let (x, y) = (&a.bucket, &b.bucket);
        x.frames
            .cmp(&y.frames)
            .then(a.resolution.total_cmp(&b.resolution))
            .then(x.ar.total_cmp(&y.ar))
            .then(x.width.cmp(&y.width))
            .then(x.height.cmp(&y.height))
    });
    BucketTable {
        rows,
        steps_per_epoch: steps,
        too_short,
        unplaceable,
    }
}

/// One directory's (AR, frames) or size-bucket group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Group {
    Ar(u64, u32),
    Size(u32, u32, u32),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::lint::{batch_settings, parse_dataset};

    /// The rules of the first `[[directory]]` of a dataset config.
    fn rules(toml: &str) -> BucketRules {
        let cfg = parse_dataset(toml).expect("test config parses");
        BucketRules::new(&cfg.directories[0].effective(&cfg))
    }

    fn img(w: u32, h: u32) -> Medium {
        Medium::image(w, h)
    }

    fn vid(w: u32, h: u32, frames: u32) -> Medium {
        Medium {
            width: w,
            height: h,
            frames,
        }
    }

    fn settings(text: &str) -> BatchSettings {
        batch_settings(text).expect("test main config parses")
    }

    fn bucket(ar: f64, frames: u32) -> Placement {
        Placement::Bucket { ar, frames }
    }

    // --- Aspect ratios and resolutions

    #[test]
    fn geomspace_ars_are_numpys_rounded_to_three_decimals() {
        // geomspace(0.5, 2, 7) = 2^(k/3) / 2 for k = 0..6:
        // 0.5, 0.62996, 0.79370, 1, 1.25992, 1.58740, 2.
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\n\
             num_ar_buckets = 7\n[[directory]]\npath = '/d'\n",
        );
        assert_eq!(
            r.aspect_ratios(),
            &[0.5, 0.63, 0.794, 1.0, 1.26, 1.587, 2.0]
        );
        // 9 buckets: 2^(k/4) / 2: 0.59460, 0.70711, 0.84090, 1.18921, 1.41421, 1.68179.
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\n\
             num_ar_buckets = 9\n[[directory]]\npath = '/d'\n",
        );
        assert_eq!(
            r.aspect_ratios(),
            &[0.5, 0.595, 0.707, 0.841, 1.0, 1.189, 1.414, 1.682, 2.0]
        );
        // One bucket is min_ar itself.
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nmin_ar = 0.75\nmax_ar = 2.0\n\
             num_ar_buckets = 1\n[[directory]]\npath = '/d'\n",
        );
        assert_eq!(r.aspect_ratios(), &[0.75]);
    }

    #[test]
    fn ar_lists_round_like_python_and_size_buckets_like_numpy() {
        // 872/640 = 1.3625 (binary value just above): Python's round → 1.363, NumPy's
        // rint(1362.5) / 1000 → 1.362. diffusion-pipe uses the first for ar_buckets (a Python
        // list) and the second for size_buckets (a NumPy array).
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nar_buckets = [[872, 640]]\n\
             [[directory]]\npath = '/d'\n",
        );
        assert_eq!(r.aspect_ratios(), &[1.363]);
        let r = rules("size_buckets = [[872, 640, 1]]\n[[directory]]\npath = '/d'\n");
        assert_eq!(r.aspect_ratios(), &[1.362]);
        // Exact ties round half to even in both: 0.0625 → 0.062, 1.0625 → 1.062.
        assert_eq!(round3_python(0.0625), 0.062);
        assert_eq!(round3_numpy(1.0625), 1.062);
        assert_eq!(round3_python(0.1875), 0.188);
    }

    #[test]
    fn values_are_rounded_then_deduplicated_and_sorted() {
        // 1.0004 and 0.9996 round to 1.0; 16/9 = 1.7778 and 1.7777 to 1.778.
        let r = rules(
            "resolutions = [1024, 512, [512, 512], 512.0004, [1024, 256]]\n\
             enable_ar_bucket = true\nar_buckets = [1.7777, 1.0004, [16, 9], 0.9996, 1.0]\n\
             [[directory]]\npath = '/d'\n",
        );
        assert_eq!(r.aspect_ratios(), &[1.0, 1.778]);
        // [512, 512] → 512; 512.0004 → 512.0; [1024, 256] → sqrt(262144) = 512.
        assert_eq!(r.resolutions(), &[512.0, 1024.0]);
    }

    #[test]
    fn ar_bucketing_off_means_one_square_bucket() {
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = false\nar_buckets = [0.5, 2.0]\n\
             [[directory]]\npath = '/d'\n",
        );
        assert_eq!(r.aspect_ratios(), &[1.0]);
        assert_eq!(r.place(img(1920, 1080)), bucket(1.0, 1));
        assert_eq!(r.place(img(300, 1200)), bucket(1.0, 1));
        assert_eq!(bucket_size(512.0, 1.0, 16), (512, 512));
    }

    #[test]
    fn an_empty_ar_list_falls_back_to_geomspace() {
        // Python treats [] as false: min_ar/max_ar/num_ar_buckets decide.
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nar_buckets = []\nmin_ar = 1.0\n\
             max_ar = 4.0\nnum_ar_buckets = 3\n[[directory]]\npath = '/d'\n",
        );
        assert_eq!(r.aspect_ratios(), &[1.0, 2.0, 4.0]);
    }

    #[test]
    fn nearest_ar_in_log_space_first_on_ties() {
        // Sorted to [0.5, 2.0]; a square is ln 2 from both: the first (0.5) wins.
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nar_buckets = [2.0, 0.5]\n\
             [[directory]]\npath = '/d'\n",
        );
        assert_eq!(r.place(img(100, 100)), bucket(0.5, 1));
        // Sorted to [1.0, 4.0]; 2:1 is ln 2 from both: 1.0 wins.
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nar_buckets = [4.0, 1.0]\n\
             [[directory]]\npath = '/d'\n",
        );
        assert_eq!(r.place(img(200, 100)), bucket(1.0, 1));
        // Log space, not linear: 1.45 is linearly nearer 1 (0.45 vs 0.55) but in ln nearer 2
        // (0.372 vs 0.322); 1.4 is nearer 1 both ways (ln: 0.336 vs 0.357).
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nar_buckets = [1.0, 2.0]\n\
             [[directory]]\npath = '/d'\n",
        );
        assert_eq!(r.place(img(145, 100)), bucket(2.0, 1));
        assert_eq!(r.place(img(140, 100)), bucket(1.0, 1));
    }

    #[test]
    fn frames_go_to_the_largest_bucket_not_above_them() {
        let r =
            rules("resolutions = [512]\nframe_buckets = [33, 65]\n[[directory]]\npath = '/d'\n");
        assert_eq!(r.frame_buckets(), &[1, 33, 65]);
        assert_eq!(r.place(vid(640, 480, 100)), bucket(1.0, 65));
        assert_eq!(r.place(vid(640, 480, 65)), bucket(1.0, 65));
        assert_eq!(r.place(vid(640, 480, 64)), bucket(1.0, 33));
        assert_eq!(r.place(vid(640, 480, 33)), bucket(1.0, 33));
        // A video landing in the image bucket is skipped, and so is one with no frames.
        assert_eq!(
            r.place(vid(640, 480, 32)),
            Placement::TooShort { frames: 32 }
        );
        assert_eq!(r.place(vid(640, 480, 2)), Placement::TooShort { frames: 2 });
        assert_eq!(r.place(vid(640, 480, 0)), Placement::TooShort { frames: 0 });
        // "Video" means frames > 1: a one-frame clip is an image.
        assert_eq!(r.place(vid(640, 480, 1)), bucket(1.0, 1));
    }

    #[test]
    fn sides_round_to_the_multiple_half_to_even() {
        // 40/16 = 2.5 → 2 (half up would give 48); 56/16 = 3.5 → 4; 24/16 = 1.5 → 2.
        assert_eq!(bucket_size(40.0, 1.0, 16), (32, 32));
        assert_eq!(bucket_size(56.0, 1.0, 16), (64, 64));
        assert_eq!(bucket_size(24.0, 1.0, 16), (32, 32));
        // 512 at 2:1: w = 512·√2 = 724.08 → 45.25·16 → 720; h = 512/√2 = 362.04 → 22.63 → 368.
        assert_eq!(bucket_size(512.0, 2.0, 16), (720, 368));
        // At 32: 22.63 → 23 → 736; 11.31 → 11 → 352.
        assert_eq!(bucket_size(512.0, 2.0, 32), (736, 352));
        // 768 at 1.26: w = 862.08 → 53.88 → 864; h = 684.19 → 42.76 → 688.
        assert_eq!(bucket_size(768.0, 1.26, 16), (864, 688));
        // 512 at 0.63: w = 406.39 → 25.40 → 400; h = 645.06 → 40.32 → 640.
        assert_eq!(bucket_size(512.0, 0.63, 16), (400, 640));
    }

    // --- Models and frame rates

    #[test]
    fn frame_rates_and_multiples_per_model() {
        for (t, fps, m) in [
            ("hunyuan-video", Some(24.0), 16),
            ("ltx-video", Some(25.0), 32),
            ("wan", Some(16.0), 16),
            ("cosmos_predict2", Some(16.0), 16),
            ("cosmos", Some(24.0), 16),
            ("hunyuan_image", None, 32),
            ("flux", None, 16),
            ("sdxl", None, 16),
            ("qwen_image", None, 16),
            ("no-such-model", None, 16),
        ] {
            let f = ModelFacts::new(t);
            assert_eq!(f.fps(), fps, "{t}");
            assert_eq!(size_multiple(&f), m, "{t}");
        }
        // Wan 2.2 5B is told by its checkpoint's config.json.
        let json = r#"{"_class_name": "WanModel", "model_type": "ti2v", "dim": 3072}"#;
        let mut f = ModelFacts::new("wan");
        f.wan_checkpoint_type = wan_checkpoint_type(json);
        assert!(f.is_wan22_5b());
        assert_eq!((f.fps(), size_multiple(&f)), (Some(24.0), 32));
        f.wan_checkpoint_type = Some("t2v".to_string());
        assert_eq!((f.fps(), size_multiple(&f)), (Some(16.0), 16));
        // SkyReels V2 only by the folder's name (trailing slash and case do not matter).
        f.ckpt_path = Some("/models/SkyReels-V2-T2V-14B-540P/".to_string());
        assert_eq!((f.fps(), size_multiple(&f)), (Some(24.0), 16));
        f.ckpt_path = Some("/models/skyreels/Wan2.1-T2V-14B".to_string());
        assert_eq!(f.fps(), Some(16.0));
        assert_eq!(wan_checkpoint_type("not json"), None);
        assert_eq!(wan_checkpoint_type(r#"{"model_type": 3}"#), None);
    }

    #[test]
    fn wan_config_is_looked_for_where_diffusion_pipe_looks() {
        let mut f = ModelFacts::new("wan");
        f.ckpt_path = Some("/m/Wan2.2".to_string());
        f.transformer_path = Some("/m/t".to_string());
        assert_eq!(
            f.wan_config_candidates(),
            vec![
                PathBuf::from("/m/t/config.json"),
                PathBuf::from("/m/Wan2.2/config.json"),
                PathBuf::from("/m/Wan2.2/low_noise_model/config.json"),
            ]
        );
        assert!(ModelFacts::new("flux").wan_config_candidates().is_empty());
    }

    #[test]
    fn frames_are_converted_to_the_model_rate_by_truncation() {
        // 100 frames at 30 fps to 16 fps: 1600 / 30 = 53.3 → 53.
        assert_eq!(convert_frames(100, 30.0, Some(16.0)), Some(53));
        // NTSC 29.97 (30000/1001): 81 · 16 / 29.97003 = 43.24 → 43.
        assert_eq!(convert_frames(81, 30000.0 / 1001.0, Some(16.0)), Some(43));
        // Up-sampling: 24 fps to 25: 49 · 25 / 24 = 51.04 → 51.
        assert_eq!(convert_frames(49, 24.0, Some(25.0)), Some(51));
        assert_eq!(convert_frames(100, 30.0, None), None);
        assert_eq!(convert_frames(100, 0.0, Some(16.0)), None);
        assert_eq!(convert_frames(100, f64::NAN, Some(16.0)), None);
        assert_eq!(convert_frames(100, -30.0, Some(16.0)), None);
        assert_eq!(convert_frames(u64::MAX, 1e-300, Some(16.0)), Some(u64::MAX));
    }

    #[test]
    fn videos_converted_from_30_to_16_fps_then_bucketed() {
        let r =
            rules("resolutions = [512]\nframe_buckets = [1, 33, 49]\n[[directory]]\npath = '/d'\n");
        let fps = ModelFacts::new("wan").fps();
        let place = |frames: u64| {
            r.place(Medium::video(640, 360, frames, 30.0, fps).expect("wan reads video"))
        };
        // 100 → 53 → 49; 62 → 33.07 → 33; 61 → 32.5 → 32: too short; 40 → 21: too short.
        assert_eq!(place(100), bucket(1.0, 49));
        assert_eq!(place(62), bucket(1.0, 33));
        assert_eq!(place(61), Placement::TooShort { frames: 32 });
        assert_eq!(place(40), Placement::TooShort { frames: 21 });
        // An image model reads no video at all.
        assert_eq!(
            Medium::video(640, 360, 100, 30.0, ModelFacts::new("flux").fps()),
            None
        );
    }

    // --- size_buckets (Cosmos)

    #[test]
    fn size_buckets_follow_diffusion_pipes_indexing_exactly() {
        // Cosmos's example buckets. ARs (NumPy-rounded, sorted): 0.55, 0.733, 1.0, 1.364,
        // 1.818; candidates are bucket[i] for i in argsort(distance to those): a square is
        // nearest ARs[2], so it lands in bucket[2] = 704×960.
        let r = rules(
            "size_buckets = [[960, 960, 1], [960, 704, 1], [704, 960, 1], [1280, 704, 1], \
             [704, 1280, 1]]\n[[directory]]\npath = '/d'\n",
        );
        assert_eq!(r.aspect_ratios(), &[0.55, 0.733, 1.0, 1.364, 1.818]);
        assert!(r.resolutions().is_empty());
        let size = |w, h, f| Placement::Size {
            width: w,
            height: h,
            frames: f,
        };
        assert_eq!(r.place(img(1000, 1000)), size(704, 960, 1));
        // 16:9 (1.778) is nearest ARs[4] → bucket[4] = 704×1280; 9:16 nearest ARs[0] → 960².
        assert_eq!(r.place(img(1920, 1080)), size(704, 1280, 1));
        assert_eq!(r.place(img(1080, 1920)), size(960, 960, 1));
        // Only the first K (distinct ARs) buckets are ever candidates, longest frames first:
        // here K = 2 of the sorted [[960,960,121], [704,1280,121], [960,960,1]], so no image
        // fits anywhere, and a square video goes to 704×1280.
        let r = rules(
            "size_buckets = [[960, 960, 1], [960, 960, 121], [704, 1280, 121]]\n\
             [[directory]]\npath = '/d'\n",
        );
        assert_eq!(
            r.size_buckets(),
            Some(&[[960, 960, 121], [704, 1280, 121], [960, 960, 1]][..])
        );
        assert_eq!(r.aspect_ratios(), &[0.55, 1.0]);
        assert_eq!(r.place(img(1000, 1000)), Placement::TooShort { frames: 1 });
        assert_eq!(r.place(vid(1000, 1000, 200)), size(704, 1280, 121));
        assert_eq!(r.place(vid(720, 1280, 130)), size(960, 960, 121));
        assert_eq!(
            r.place(vid(720, 1280, 100)),
            Placement::TooShort { frames: 100 }
        );
    }

    // --- Batches

    #[test]
    fn batch_settings_come_from_the_linters_readers() {
        let s = settings(
            "micro_batch_size_per_gpu = [[512, 4], [1024, 1]]\n\
             image_micro_batch_size_per_gpu = 8\ngradient_accumulation_steps = 3\n\
             pipeline_stages = 2\n[model]\ntype = 'wan'\nckpt_path = '/m/Wan2.2-TI2V-5B'\n",
        );
        assert_eq!(
            s.micro,
            Some(Batch::PerResolution(vec![(512.0, 4), (1024.0, 1)]))
        );
        assert_eq!(s.image_micro, Some(Batch::One(8)));
        assert_eq!(s.gradient_accumulation_steps, Some(3));
        assert_eq!(s.pipeline_stages, Some(2));
        assert_eq!(s.model_type.as_deref(), Some("wan"));
        assert_eq!(s.ckpt_path.as_deref(), Some("/m/Wan2.2-TI2V-5B"));
        let f = ModelFacts::from_settings(&s).expect("has a model");
        assert_eq!(f.model_type, "wan");
        // Defaults: 1, the image batch is the micro batch.
        let s = settings("[model]\ntype = 'flux'\n");
        assert_eq!(s.micro, Some(Batch::One(1)));
        assert_eq!(s.image_micro, Some(Batch::One(1)));
        assert_eq!(s.gradient_accumulation_steps, Some(1));
        assert_eq!(s.pipeline_stages, Some(1));
        let s = settings("micro_batch_size_per_gpu = [[512, 2]]\n");
        assert_eq!(s.image_micro, Some(Batch::PerResolution(vec![(512.0, 2)])));
        assert_eq!(ModelFacts::from_settings(&s), None);
        // Unusable values are None, not a guess.
        let s = settings("micro_batch_size_per_gpu = 0\npipeline_stages = 'two'\n");
        assert_eq!(
            (s.micro, s.image_micro, s.pipeline_stages),
            (None, None, None)
        );
        assert_eq!(batch_settings("micro_batch_size_per_gpu = ["), None);
    }

    #[test]
    fn global_batch_is_micro_times_accumulation_times_data_parallel() {
        let s = settings(
            "micro_batch_size_per_gpu = 2\nimage_micro_batch_size_per_gpu = 4\n\
             gradient_accumulation_steps = 2\npipeline_stages = 2\n",
        );
        // Videos: 2 × 2 × (GPUs / 2).
        assert_eq!(global_batch(&s, 2, 512, 512, 33), Some(4));
        assert_eq!(global_batch(&s, 4, 512, 512, 33), Some(8));
        assert_eq!(global_batch(&s, 8, 512, 512, 33), Some(16));
        // Images use the image batch: 4 × 2 × 4.
        assert_eq!(global_batch(&s, 8, 512, 512, 1), Some(32));
        // 1 or 3 GPUs cannot hold 2 pipeline stages evenly; 0 GPUs is nothing.
        assert_eq!(global_batch(&s, 1, 512, 512, 33), None);
        assert_eq!(global_batch(&s, 3, 512, 512, 33), None);
        assert_eq!(global_batch(&s, 0, 512, 512, 33), None);
    }

    #[test]
    fn per_resolution_batches_pick_the_nearest_entry() {
        let s = settings("micro_batch_size_per_gpu = [[512, 4], [1024, 1]]\n");
        // sqrt(512·512) = 512 → 4; 1024 → 1; 800 is 288 from 512 and 224 from 1024 → 1.
        assert_eq!(global_batch(&s, 1, 512, 512, 1), Some(4));
        assert_eq!(global_batch(&s, 1, 1024, 1024, 1), Some(1));
        assert_eq!(global_batch(&s, 1, 800, 800, 1), Some(1));
        // 768 is 256 from both: the first entry wins.
        assert_eq!(global_batch(&s, 1, 768, 768, 1), Some(4));
        // 720×368: sqrt(264960) = 514.7 → 4; a video bucket uses the same list (no image list).
        assert_eq!(global_batch(&s, 1, 720, 368, 33), Some(4));
        // A repeated resolution keeps its first place and takes its last value (a dict).
        let s = settings("micro_batch_size_per_gpu = [[512, 4], [1024, 1], [512, 8]]\n");
        assert_eq!(global_batch(&s, 1, 768, 768, 1), Some(8));
        assert_eq!(global_batch(&s, 2, 1024, 1024, 1), Some(2));
    }

    // --- The table

    /// Two directories sharing a size bucket; repeats 3 and 1.5.
    fn two_directories() -> (BucketRules, BucketRules, Vec<Placement>, Vec<Placement>) {
        let a = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nar_buckets = [0.5, 1.0, 2.0]\n\
             [[directory]]\npath = '/a'\nnum_repeats = 3\n",
        );
        let b = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nar_buckets = [0.5, 1.0, 2.0]\n\
             [[directory]]\npath = '/b'\nnum_repeats = 1.5\n",
        );
        // a: 5 squares, 2 at 2:1. b: 3 squares, 1 at 1:2.
        let ma: Vec<Placement> = [img(1000, 1000); 5]
            .into_iter()
            .chain([img(1024, 512); 2])
            .map(|m| a.place(m))
            .collect();
        let mb: Vec<Placement> = [img(800, 800); 3]
            .into_iter()
            .chain([img(500, 1000)])
            .map(|m| b.place(m))
            .collect();
        (a, b, ma, mb)
    }

    #[test]
    fn buckets_sum_directories_after_repeats_and_cut_to_the_global_batch() {
        let (a, b, ma, mb) = two_directories();
        assert_eq!((a.num_repeats(), b.num_repeats()), (3.0, 1.5));
        let dirs = [
            DirectoryPlacements::new(&a, 3.0, &ma),
            DirectoryPlacements::new(&b, 1.5, &mb),
        ];
        let s = settings("micro_batch_size_per_gpu = 4\n");
        let t = tabulate(&dirs, &ModelFacts::new("flux"), Some((&s, 1)));
        let summary: Vec<_> = t
            .rows
            .iter()
            .map(|r| {
                let b = &r.bucket;
                (
                    b.ar,
                    b.width,
                    b.height,
                    r.per_directory.clone(),
                    r.items,
                    r.used,
                    r.dropped,
                )
            })
            .collect();
        // Square: 5·3 = 15 + int(3·1.5 = 4.5) = 4 → 19, cut to 16 (3 dropped).
        // 2:1 at 512 → 720×368 (see sides_round…): 2·3 = 6 → 4 (2 dropped).
        // 1:2 → 368×720: int(1·1.5) = 1 < 4: completely dropped.
        assert_eq!(
            summary,
            vec![
                (0.5, 368, 720, vec![0, 1], 1, 0, 1),
                (1.0, 512, 512, vec![15, 4], 19, 16, 3),
                (2.0, 720, 368, vec![6, 0], 6, 4, 2),
            ]
        );
        assert!(t.rows.iter().all(|r| r.global_batch == Some(4)));
        // 16/4 + 4/4 + 0.
        assert_eq!(t.steps_per_epoch, Some(5));
        assert_eq!(t.steps_per_epoch_subsampled(Some(0.5)), Some(2));
        assert_eq!(t.steps_per_epoch_subsampled(Some(0.3)), Some(1));
        assert_eq!(t.steps_per_epoch_subsampled(Some(0.0)), Some(5));
        assert_eq!(t.steps_per_epoch_subsampled(None), Some(5));
        assert_eq!((t.too_short, t.unplaceable), (vec![0, 0], vec![0, 0]));
    }

    #[test]
    fn steps_per_epoch_with_1_2_4_8_gpus_and_two_pipeline_stages() {
        let (a, b, ma, mb) = two_directories();
        let dirs = [
            DirectoryPlacements::new(&a, 3.0, &ma),
            DirectoryPlacements::new(&b, 1.5, &mb),
        ];
        let model = ModelFacts::new("flux");
        let steps = |text: &str, gpus: u64| {
            tabulate(&dirs, &model, Some((&settings(text), gpus))).steps_per_epoch
        };
        // Buckets of 19, 6 and 1 items. One stage: global batch 4·GPUs.
        // 1: 4 + 1 + 0; 2 (8): 2 + 0 + 0; 4 (16): 1; 8 (32): 0.
        let one = "micro_batch_size_per_gpu = 4\n";
        let got: Vec<_> = [1, 2, 4, 8].iter().map(|&g| steps(one, g)).collect();
        assert_eq!(got, vec![Some(5), Some(2), Some(1), Some(0)]);
        // Two stages: 1 GPU cannot; 2 → dp 1 (4): 5; 4 → dp 2 (8): 2; 8 → dp 4 (16): 1.
        let two = "micro_batch_size_per_gpu = 4\npipeline_stages = 2\n";
        let got: Vec<_> = [1, 2, 4, 8].iter().map(|&g| steps(two, g)).collect();
        assert_eq!(got, vec![None, Some(5), Some(2), Some(1)]);
        // Without batch settings nothing is cut.
        let t = tabulate(&dirs, &model, None);
        assert_eq!(t.steps_per_epoch, None);
        assert!(t.rows.iter().all(|r| r.used == r.items && r.dropped == 0));
    }

    #[test]
    fn fractional_repeats_truncate_per_directory_and_resolution() {
        // 100 × 0.29 is 28.999999999999996 in floating point: diffusion-pipe's int() gives 28.
        let r = rules("resolutions = [512]\n[[directory]]\npath = '/d'\nnum_repeats = 0.29\n");
        let placed = vec![r.place(img(64, 64)); 100];
        let t = tabulate(
            &[DirectoryPlacements::new(&r, r.num_repeats(), &placed)],
            &ModelFacts::new("flux"),
            None,
        );
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.rows[0].items, 28);
        // 512 and 513 both give 512×512 (513/16 = 32.06): two datasets of int(3·1.5) = 4 each
        // in one bucket, 8 (not int(9)).
        let r = rules("resolutions = [512, 513]\n[[directory]]\npath = '/d'\nnum_repeats = 1.5\n");
        let placed = vec![r.place(img(10, 10)); 3];
        let t = tabulate(
            &[DirectoryPlacements::new(&r, 1.5, &placed)],
            &ModelFacts::new("flux"),
            None,
        );
        assert_eq!(t.rows.len(), 1);
        assert_eq!((t.rows[0].items, t.rows[0].resolution), (8, 512.0));
    }

    #[test]
    fn captions_and_shuffle_copies_multiply_items() {
        // cache_shuffle_num = 3: every caption becomes 3 items; captions.json gave 2 and 1.
        let r = rules(
            "resolutions = [256]\ncache_shuffle_num = 3\n[[directory]]\npath = '/d'\n\
             num_repeats = 2\n",
        );
        assert_eq!(r.caption_copies(), 3);
        let placed = vec![r.place(img(10, 10)); 2];
        let dir = DirectoryPlacements {
            captions: Some(&[2, 1]),
            ..DirectoryPlacements::new(&r, 2.0, &placed)
        };
        let t = tabulate(&[dir], &ModelFacts::new("flux"), None);
        // (2 + 1) captions × 3 copies × 2 repeats.
        assert_eq!(t.rows[0].items, 18);
        // A negative count (the parser refuses it; a hand-made directory may not) leaves none.
        let cfg = parse_dataset("resolutions = [256]\n[[directory]]\npath = '/d'\n").unwrap();
        let mut eff = cfg.directories[0].effective(&cfg);
        eff.cache_shuffle_num = -1;
        assert_eq!(BucketRules::new(&eff).caption_copies(), 0);
    }

    #[test]
    fn mixed_videos_and_images_on_wan() {
        // 30 fps videos on Wan (16 fps), frame buckets [1, 33], at 256.
        let r = rules("resolutions = [256]\nframe_buckets = [1, 33]\n[[directory]]\npath = '/d'\n");
        let model = ModelFacts::new("wan");
        let mut placed: Vec<Placement> = [100, 40, 62, 61]
            .into_iter()
            .map(|f| r.place(Medium::video(640, 360, f, 30.0, model.fps()).expect("video")))
            .collect();
        placed.extend((0..5).map(|_| r.place(img(300, 300))));
        let s = settings("micro_batch_size_per_gpu = 1\nimage_micro_batch_size_per_gpu = 4\n");
        let t = tabulate(
            &[DirectoryPlacements::new(&r, 1.0, &placed)],
            &model,
            Some((&s, 1)),
        );
        let got: Vec<_> = t
            .rows
            .iter()
            .map(|r| {
                (
                    r.bucket.frames,
                    r.bucket.width,
                    r.items,
                    r.global_batch,
                    r.used,
                )
            })
            .collect();
        // 100 → 53 and 62 → 33 reach 33 (2 items, batch 1); 40 → 21 and 61 → 32 are too
        // short; 5 images at batch 4 → 4 used.
        assert_eq!(got, vec![(1, 256, 5, Some(4), 4), (33, 256, 2, Some(1), 2)]);
        assert_eq!(t.too_short, vec![2]);
        assert_eq!(t.steps_per_epoch, Some(1 + 2));
    }

    #[test]
    fn the_rounding_multiple_splits_or_merges_buckets() {
        // Wan 2.2 5B rounds to 32: 512 at 2:1 is 736×352 there, 720×368 on Wan 2.1.
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nar_buckets = [2.0]\n\
             [[directory]]\npath = '/d'\n",
        );
        let placed = vec![r.place(img(2000, 1000))];
        let dirs = [DirectoryPlacements::new(&r, 1.0, &placed)];
        let mut model = ModelFacts::new("wan");
        let t = tabulate(&dirs, &model, None);
        assert_eq!(
            (t.rows[0].bucket.width, t.rows[0].bucket.height),
            (720, 368)
        );
        model.wan_checkpoint_type = Some("ti2v".to_string());
        let t = tabulate(&dirs, &model, None);
        assert_eq!(
            (t.rows[0].bucket.width, t.rows[0].bucket.height),
            (736, 352)
        );
    }

    #[test]
    fn size_bucket_rows_and_ar_rows_never_merge() {
        let sized = rules("size_buckets = [[512, 512, 1]]\n[[directory]]\npath = '/s'\n");
        let ar = rules("resolutions = [512]\n[[directory]]\npath = '/a'\n");
        let ps = vec![sized.place(img(10, 10))];
        let pa = vec![ar.place(img(10, 10))];
        let t = tabulate(
            &[
                DirectoryPlacements::new(&sized, 1.0, &ps),
                DirectoryPlacements::new(&ar, 1.0, &pa),
            ],
            &ModelFacts::new("cosmos"),
            None,
        );
        assert_eq!(t.rows.len(), 2);
        assert!(t.rows.iter().all(|r| r.items == 1 && r.resolution == 512.0));
    }

    // --- Bad input

    #[test]
    fn bad_input_is_reported_not_panicked_on() {
        let r = rules("resolutions = [512]\n[[directory]]\npath = '/d'\n");
        assert_eq!(r.place(img(0, 100)), Placement::Unplaceable);
        assert_eq!(r.place(img(100, 0)), Placement::Unplaceable);
        assert_eq!(r.place(img(u32::MAX, 1)), bucket(1.0, 1));
        // AR bucketing on with nothing to make buckets from.
        let r = rules("resolutions = [512]\nenable_ar_bucket = true\n[[directory]]\npath = '/d'\n");
        assert!(r.problem().is_some());
        assert!(r.aspect_ratios().is_empty());
        assert_eq!(r.place(img(10, 10)), Placement::Unplaceable);
        // Absurd bucket counts are refused, not allocated.
        let r = rules(
            "resolutions = [512]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\n\
             num_ar_buckets = 9000000000000\n[[directory]]\npath = '/d'\n",
        );
        assert!(r.problem().is_some_and(|p| p.contains("num_ar_buckets")));
        // No resolutions: nothing is trained, and the table says so.
        let r = rules("[[directory]]\npath = '/d'\n");
        assert!(r.problem().is_some());
        let placed = vec![r.place(img(10, 10)), Placement::Unplaceable];
        let t = tabulate(
            &[DirectoryPlacements::new(&r, f64::NAN, &placed)],
            &ModelFacts::new("flux"),
            Some((&settings(""), 1)),
        );
        assert!(t.rows.is_empty());
        assert_eq!((t.steps_per_epoch, t.unplaceable), (Some(0), vec![1]));
        // Empty size_buckets: every medium is skipped.
        let r = rules("size_buckets = []\n[[directory]]\npath = '/d'\n");
        assert!(r.problem().is_some());
        assert_eq!(r.place(img(10, 10)), Placement::TooShort { frames: 1 });
        // A NaN or zero repeat count gives no items; a huge resolution saturates.
        assert_eq!(repeated(10, f64::NAN), 0);
        assert_eq!(repeated(10, 0.0), 0);
        assert_eq!(bucket_size(1e300, 1.0, 16).0, u32::MAX);
        // A captions slice shorter than the media counts one caption for the rest.
        let r = rules("resolutions = [64]\n[[directory]]\npath = '/d'\n");
        let placed = vec![r.place(img(10, 10)); 3];
        let dir = DirectoryPlacements {
            captions: Some(&[5]),
            ..DirectoryPlacements::new(&r, 1.0, &placed)
        };
        assert_eq!(
            tabulate(&[dir], &ModelFacts::new("flux"), None).rows[0].items,
            7
        );
    }

    // --- The real example configs (GPL data, read in place)

    #[test]
    fn diffusion_pipes_example_configs() {
        let dir = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus/diffusion-pipe-examples"
        ));
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        let (Some(ds), Some(cosmos), Some(main)) = (
            read("dataset.toml"),
            read("cosmos_dataset.toml"),
            read("main_example.toml"),
        ) else {
            eprintln!(
                "note: {} is absent; skipping the example-config checks",
                dir.display()
            );
            return;
        };
        // resolutions [512], AR 0.5..2 in 7, frame_buckets [1, 33].
        let r = rules(&ds);
        assert_eq!(
            r.aspect_ratios(),
            &[0.5, 0.63, 0.794, 1.0, 1.26, 1.587, 2.0]
        );
        assert_eq!(
            (r.resolutions(), r.frame_buckets()),
            (&[512.0][..], &[1, 33][..])
        );
        assert_eq!(r.place(img(1920, 1080)), bucket(1.587, 1));
        let r = rules(&cosmos);
        assert_eq!(r.aspect_ratios(), &[0.55, 0.733, 1.0, 1.364, 1.818]);
        let s = settings(&main);
        assert_eq!(s.micro, Some(Batch::One(1)));
        assert_eq!(s.model_type.as_deref(), Some("hunyuan-video"));
        assert_eq!(global_batch(&s, 1, 512, 512, 33), Some(1));
    }
}
