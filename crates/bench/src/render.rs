//! `tessera bench-render`: how fast Tessera draws a card beside librsvg's `rsvg-convert`, on the
//! same filled-in SVG (the Corporate Badge for Jane Doe, photo included), on this machine.
//!
//! Tessera renders in process; `rsvg-convert` is timed as a command, the way a print pipeline
//! built on it would run it (one process per side, `-d 300 -p 300`, as `rsvg-convert` is used for
//! print). Throughput runs one worker per core on both sides.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tessera_core::ids::UserId;
use tessera_core::model::Layout;
use tessera_core::ports::{CardData, Store};
use tessera_core::CoreError;
use tessera_print::SvgRenderer;
use tessera_server::wiring::{Options, Tessera};

/// One measured way of drawing a card (both sides).
pub struct Row {
    pub what: String,
    pub per_card: Vec<Duration>,
}

pub struct Figures {
    pub rows: Vec<Row>,
    /// (what, threads, cards per second)
    pub throughput: Vec<(String, usize, f64)>,
    pub rsvg_version: String,
}

fn median_ms(v: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Figures {
    /// A Markdown table, ready for docs/benchmarks.md.
    pub fn report(&self) -> String {
        let mut out = format!(
            "reference: {}\n\n| what (one card, front + back) | median per card |\n| --- | --- |\n",
            self.rsvg_version
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {:.2} ms (n={}) |\n",
                r.what,
                median_ms(&r.per_card),
                r.per_card.len()
            ));
        }
        out.push_str("\n| throughput | workers | cards per second |\n| --- | --- | --- |\n");
        for (what, threads, rate) in &self.throughput {
            out.push_str(&format!("| {what} | {threads} | {rate:.1} |\n"));
        }
        let find = |prefix: &str| {
            self.rows
                .iter()
                .find(|r| r.what.starts_with(prefix))
                .map(|r| median_ms(&r.per_card))
        };
        if let (Some(t), Some(r)) = (find("Tessera PNG"), find("rsvg-convert PNG")) {
            out.push_str(&format!(
                "\nPNG, per card: Tessera is {:.1}x faster than rsvg-convert\n",
                r / t
            ));
        }
        if let (Some(t), Some(r)) = (find("Tessera PDF"), find("rsvg-convert PDF")) {
            out.push_str(&format!(
                "PDF, per card: Tessera is {:.1}x faster than rsvg-convert\n",
                r / t
            ));
        }
        out
    }
}

fn time_n(n: usize, mut f: impl FnMut() -> Result<(), String>) -> Result<Vec<Duration>, String> {
    // One warm-up run: fonts parsed, caches filled, the binary paged in.
    f()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f()?;
        out.push(started.elapsed());
    }
    Ok(out)
}

/// Cards per second with `threads` workers each doing `per_thread` cards.
fn throughput(
    threads: usize,
    per_thread: usize,
    f: impl Fn() -> Result<(), String> + Sync,
) -> Result<f64, String> {
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..per_thread {
                        f()?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| "a worker panicked".to_owned())?)
    })?;
    Ok((threads * per_thread) as f64 / started.elapsed().as_secs_f64())
}

fn rsvg(args: &[&str]) -> Result<(), String> {
    let out = Command::new("rsvg-convert")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run rsvg-convert (apt-get install librsvg2-bin): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "rsvg-convert failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn cards(layout: &Layout, data: &CardData, dir: &Path) -> Result<(String, String), String> {
    let r = SvgRenderer::new();
    let front = r.fill(&layout.front_svg, data).map_err(|e| e.to_string())?;
    let back = r
        .fill(layout.back_svg.as_deref().unwrap_or_default(), data)
        .map_err(|e| e.to_string())?;
    let (f, b) = (dir.join("front.svg"), dir.join("back.svg"));
    std::fs::write(&f, front).map_err(|e| e.to_string())?;
    std::fs::write(&b, back).map_err(|e| e.to_string())?;
    Ok((f.display().to_string(), b.display().to_string()))
}

/// Measures `n` cards of each kind in a fresh data folder under `dir`.
pub async fn run(dir: &Path, n: usize) -> Result<Figures, CoreError> {
    let (t, _) = Tessera::open(&Options::new(dir.join("data")))
        .await
        .map_err(|e| CoreError::Invalid(e.to_string()))?;
    let user = t.store.user(&UserId::new("jdoe")).await?;
    let data = CardData {
        fields: tessera_core::template::fields(&user, None),
        photo: t.store.photo(&user.uid).await?,
    };
    let layout = tessera_print::corporate_badge();
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || measure(&layout, &data, &dir, n))
        .await
        .map_err(|e| CoreError::Invalid(e.to_string()))?
        .map_err(CoreError::Invalid)
}

fn measure(layout: &Layout, data: &CardData, dir: &Path, n: usize) -> Result<Figures, String> {
    let (front, back) = cards(layout, data, dir)?;
    let png = dir.join("out.png").display().to_string();
    let pdf = dir.join("out.pdf").display().to_string();
    let r = SvgRenderer::new();
    let back_svg = layout.back_svg.clone().unwrap_or_default();
    let tessera_png = || -> Result<(), String> {
        r.render_png(&layout.front_svg, data)
            .map_err(|e| e.to_string())?;
        r.render_png(&back_svg, data).map_err(|e| e.to_string())?;
        Ok(())
    };
    let tessera_pdf = || -> Result<(), String> {
        r.render_pdf(layout, data).map_err(|e| e.to_string())?;
        Ok(())
    };
    let tessera_all = || -> Result<(), String> {
        r.render_card(layout, data).map_err(|e| e.to_string())?;
        Ok(())
    };
    let rsvg_png = || -> Result<(), String> {
        rsvg(&["-d", "300", "-p", "300", "-b", "white", "-o", &png, &front])?;
        rsvg(&["-d", "300", "-p", "300", "-b", "white", "-o", &png, &back])
    };
    let rsvg_pdf = || -> Result<(), String> { rsvg(&["-f", "pdf", "-o", &pdf, &front, &back]) };
    let version = Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "rsvg-convert (not found)".into());
    let rows = vec![
        Row {
            what: "Tessera PNG 300 dpi (in process)".into(),
            per_card: time_n(n, tessera_png)?,
        },
        Row {
            what: "rsvg-convert PNG 300 dpi (one process per side)".into(),
            per_card: time_n(n, rsvg_png)?,
        },
        Row {
            what: "Tessera PDF, two CR80 pages (in process)".into(),
            per_card: time_n(n, tessera_pdf)?,
        },
        Row {
            what: "rsvg-convert PDF, two pages (one process)".into(),
            per_card: time_n(n, rsvg_pdf)?,
        },
        Row {
            what: "Tessera PNG + PDF, what a print sends (in process)".into(),
            per_card: time_n(n, tessera_all)?,
        },
    ];
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(8);
    let per_thread = n.max(4);
    // Each rsvg worker writes its own files so that they do not overwrite each other's output.
    let rsvg_worker = || -> Result<(), String> {
        let id = format!("{:?}", std::thread::current().id())
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>();
        let out = dir.join(format!("out-{id}.png")).display().to_string();
        rsvg(&["-d", "300", "-p", "300", "-b", "white", "-o", &out, &front])?;
        rsvg(&["-d", "300", "-p", "300", "-b", "white", "-o", &out, &back])
    };
    let throughput = vec![
        (
            "Tessera PNG 300 dpi".to_owned(),
            1,
            throughput(1, per_thread, tessera_png)?,
        ),
        (
            "Tessera PNG 300 dpi".to_owned(),
            threads,
            throughput(threads, per_thread, tessera_png)?,
        ),
        (
            "rsvg-convert PNG 300 dpi".to_owned(),
            1,
            throughput(1, per_thread, rsvg_worker)?,
        ),
        (
            "rsvg-convert PNG 300 dpi".to_owned(),
            threads,
            throughput(threads, per_thread, rsvg_worker)?,
        ),
    ];
    Ok(Figures {
        rows,
        throughput,
        rsvg_version: version,
    })
}
