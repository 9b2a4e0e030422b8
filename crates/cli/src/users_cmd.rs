//! `tessera users`: the people Tessera issues cards to, from the command line. Local people are
//! added, changed and deleted here; anyone can be disabled (their cards follow the rule chosen)
//! and enabled again; a CSV export from HR is imported with a progress bar and a report. Every
//! command acts as the operator `cli` through the core's use cases, audited like anyone else.

use crate::{open, DataArgs};
use clap::Subcommand;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tessera_core::ids::UserId;
use tessera_core::people::csv_file::{self, NoPhotos, PhotoFiles};
use tessera_core::people::local::{self, UserDraft};
use tessera_core::people::{self, photos, DeprovisionRule, ImportOptions, Progress, Report};
use tessera_core::ports::Crop;
use tessera_core::services::Actor;
use tessera_core::{users, CoreError};

/// The fields of a person, for `add` and `edit`.
#[derive(clap::Args)]
pub struct PersonArgs {
    #[arg(long)]
    given_name: Option<String>,
    #[arg(long)]
    family_name: Option<String>,
    /// [default: the given and family names]
    #[arg(long)]
    display_name: Option<String>,
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    upn: Option<String>,
    #[arg(long)]
    employee_id: Option<String>,
    #[arg(long)]
    department: Option<String>,
    #[arg(long)]
    title: Option<String>,
    /// Groups, comma-separated (they decide which policies, layouts and operators apply).
    #[arg(long)]
    groups: Option<String>,
    /// A free attribute, NAME=VALUE (repeatable); `NAME=` removes it.
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    attributes: Vec<String>,
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add a person kept by Tessera itself (source `local`).
    Add {
        #[command(flatten)]
        data: DataArgs,
        /// Their uid: letters, digits, '.', '_', '@' or '-'.
        uid: String,
        #[command(flatten)]
        person: PersonArgs,
    },
    /// Change a local person; only the options given change.
    Edit {
        #[command(flatten)]
        data: DataArgs,
        uid: String,
        #[command(flatten)]
        person: PersonArgs,
    },
    /// Disable a person: no new card, and their cards follow --cards.
    Disable {
        #[command(flatten)]
        data: DataArgs,
        uid: String,
        /// suspend (active cards, resumable), terminate (certificates revoked) or keep
        /// [default: the configured rule].
        #[arg(long, value_parser = ["suspend", "terminate", "keep"])]
        cards: Option<String>,
    },
    /// Enable a disabled person again; their suspended cards can then be resumed.
    Enable {
        #[command(flatten)]
        data: DataArgs,
        uid: String,
    },
    /// Delete a person who has no live card (their history stays).
    Delete {
        #[command(flatten)]
        data: DataArgs,
        uid: String,
    },
    /// A person and their cards, as JSON.
    Show {
        #[command(flatten)]
        data: DataArgs,
        uid: String,
    },
    /// People whose name, uid, email or employee id contains QUERY, as a table.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(default_value = "")]
        query: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Import people from a CSV file exported by HR (UTF-8, a header row); prints the report.
    /// Exits 1 when the file is refused whole (nothing is written then).
    Import {
        #[command(flatten)]
        data: DataArgs,
        /// The CSV file.
        file: PathBuf,
        /// The folder holding the photos that the photo column names (plain file names).
        #[arg(long, value_name = "DIR")]
        photos: Option<PathBuf>,
        /// field=Column: the column that fills a field (repeatable), over the mapping the last
        /// import saved; attr.NAME=Column keeps a column as a free attribute.
        #[arg(long = "map", value_name = "FIELD=COLUMN")]
        map: Vec<String>,
        /// The separator of several groups in the groups column [default: ;].
        #[arg(long)]
        groups_separator: Option<String>,
        /// The file lists every person of the CSV source: those it leaves out are disabled
        /// and their cards deprovisioned by the configured rule.
        #[arg(long)]
        complete: bool,
        /// Report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a person's photo (JPEG or PNG), optionally cropped; or remove it with --remove.
    Photo {
        #[command(flatten)]
        data: DataArgs,
        uid: String,
        /// The picture.
        #[arg(required_unless_present = "remove", conflicts_with = "remove")]
        file: Option<PathBuf>,
        /// The part of the picture to keep: x,y,width,height in pixels.
        #[arg(long, value_name = "X,Y,W,H", conflicts_with = "remove")]
        crop: Option<String>,
        #[arg(long)]
        remove: bool,
    },
}

fn coded(e: CoreError) -> String {
    format!("{} {e}", e.code().as_str())
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("JSON")
}

pub async fn users_command(command: UsersCommand) -> Result<(), String> {
    let actor = Actor::cli();
    match command {
        UsersCommand::Add { data, uid, person } => {
            let mut draft = UserDraft {
                uid: UserId::new(uid),
                ..UserDraft::default()
            };
            person.apply(&mut draft)?;
            let t = open(&data).await?;
            let user = local::create(&t.services, &actor, draft)
                .await
                .map_err(coded)?;
            println!("{}", json(&user));
        }
        UsersCommand::Edit { data, uid, person } => {
            let t = open(&data).await?;
            let uid = UserId::new(uid);
            let old = users::view(&t.services, &actor, &uid)
                .await
                .map_err(coded)?
                .user;
            // A display name made from the names is made again from the new names.
            let made = format!("{} {}", old.given_name, old.family_name);
            let display_name = if old.display_name == made.trim() {
                String::new()
            } else {
                old.display_name
            };
            let mut draft = UserDraft {
                uid: uid.clone(),
                given_name: old.given_name,
                family_name: old.family_name,
                display_name,
                email: old.email,
                upn: old.upn,
                employee_id: old.employee_id,
                department: old.department,
                title: old.title,
                groups: old.groups,
                attributes: old.attributes,
                ..UserDraft::default()
            };
            person.apply(&mut draft)?;
            let user = local::update(&t.services, &actor, &uid, draft)
                .await
                .map_err(coded)?;
            println!("{}", json(&user));
        }
        UsersCommand::Disable { data, uid, cards } => {
            let t = open(&data).await?;
            // A word that is not a rule is refused, not read as "the configured rule".
            let rule = match cards.as_deref() {
                Some(text) => Some(DeprovisionRule::parse(text).ok_or_else(|| {
                    format!("--cards must be suspend, terminate or keep, not {text:?}")
                })?),
                None => None,
            };
            let (rule, moved) = local::disable(&t.services, &actor, &UserId::new(&uid), rule)
                .await
                .map_err(coded)?;
            eprintln!("{uid} is disabled; cards: {}", rule.label());
            for c in &moved {
                eprintln!("  card {}: {} -> {}", c.serial, c.from, c.to);
            }
            println!("{}", json(&moved));
        }
        UsersCommand::Enable { data, uid } => {
            let t = open(&data).await?;
            local::enable(&t.services, &actor, &UserId::new(uid))
                .await
                .map_err(coded)?;
        }
        UsersCommand::Delete { data, uid } => {
            let t = open(&data).await?;
            local::delete(&t.services, &actor, &UserId::new(uid))
                .await
                .map_err(coded)?;
        }
        UsersCommand::Show { data, uid } => {
            let t = open(&data).await?;
            let view = users::view(&t.services, &actor, &UserId::new(uid))
                .await
                .map_err(coded)?;
            println!("{}", json(&tessera_server::api::users::view_json(&view)));
        }
        UsersCommand::List { data, query, limit } => {
            let t = open(&data).await?;
            let search = users::UserSearch {
                text: query,
                per_page: limit,
                ..Default::default()
            };
            let found = users::search(&t.services, &actor, &search)
                .await
                .map_err(coded)?
                .users;
            println!(
                "{:<20} {:<28} {:<6} {:<9} GROUPS",
                "UID", "NAME", "SOURCE", "STATE"
            );
            for u in found {
                println!(
                    "{:<20} {:<28} {:<6} {:<9} {}",
                    u.uid.as_str(),
                    u.display_name,
                    source_name(u.source),
                    if u.disabled { "disabled" } else { "enabled" },
                    u.groups.join(", ")
                );
            }
        }
        UsersCommand::Import {
            data,
            file,
            photos,
            map,
            groups_separator,
            complete,
            dry_run,
            json: as_json,
        } => {
            let bytes = read_capped(&file, csv_file::MAX_FILE_BYTES)?;
            let folder = photos.map(PhotoFolder::new).transpose()?;
            let t = open(&data).await?;
            let mut mapping = people::saved_mapping(&t.services, &actor)
                .await
                .map_err(coded)?
                .with_pairs(map.iter().map(String::as_str))
                .map_err(coded)?;
            if let Some(separator) = groups_separator {
                mapping.group_separator = separator;
            }
            let name = file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            let bar = ProgressBar::new();
            let report = people::import_csv(
                &t.services,
                &actor,
                &name,
                &bytes,
                mapping,
                folder.as_ref().map_or(&NoPhotos as &dyn PhotoFiles, |f| f),
                ImportOptions { dry_run, complete },
                &|p| bar.show(p),
            )
            .await;
            bar.finish();
            let report = report.map_err(coded)?;
            if as_json {
                println!("{}", json(&report));
            } else {
                print!("{}", describe(&report));
            }
        }
        UsersCommand::Photo {
            data,
            uid,
            file,
            crop,
            remove,
        } => {
            let uid = UserId::new(uid);
            if remove {
                let t = open(&data).await?;
                photos::remove(&t.services, &actor, &uid)
                    .await
                    .map_err(coded)?;
                return Ok(());
            }
            let file = file.ok_or("give the photo file, or --remove")?;
            let crop = crop.as_deref().map(parse_crop).transpose()?;
            // One byte over the limit is enough for the normaliser to refuse it with its reason.
            let bytes = read_capped(&file, tessera_print::photo::MAX_PHOTO_BYTES)?;
            let t = open(&data).await?;
            photos::set(&t.services, &actor, &uid, bytes, crop)
                .await
                .map_err(coded)?;
        }
    }
    Ok(())
}

impl PersonArgs {
    /// Puts the options given into `draft`.
    fn apply(self, draft: &mut UserDraft) -> Result<(), String> {
        let fields = [
            (self.given_name, &mut draft.given_name),
            (self.family_name, &mut draft.family_name),
            (self.display_name, &mut draft.display_name),
            (self.email, &mut draft.email),
            (self.upn, &mut draft.upn),
            (self.employee_id, &mut draft.employee_id),
            (self.department, &mut draft.department),
            (self.title, &mut draft.title),
        ];
        for (given, field) in fields {
            if let Some(value) = given {
                *field = value;
            }
        }
        if let Some(groups) = self.groups {
            draft.groups = groups
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect();
        }
        for pair in self.attributes {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("--attr {pair:?} is not of the form NAME=VALUE"))?;
            let name = name.trim().to_lowercase();
            if name.is_empty() {
                return Err(format!("--attr {pair:?} has no name"));
            }
            if value.is_empty() {
                draft.attributes.remove(&name);
            } else {
                draft.attributes.insert(name, value.to_owned());
            }
        }
        Ok(())
    }
}

fn source_name(source: tessera_core::model::UserSource) -> &'static str {
    use tessera_core::model::UserSource;
    match source {
        UserSource::Local => "local",
        UserSource::Csv => "csv",
        UserSource::Ldap => "ldap",
    }
}

/// `x,y,w,h` in pixels.
fn parse_crop(text: &str) -> Result<Crop, String> {
    let numbers: Vec<u32> = text
        .split(',')
        .map(|n| n.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("--crop {text:?} must be four numbers: x,y,width,height"))?;
    match numbers[..] {
        [x, y, width, height] => Ok(Crop {
            x,
            y,
            width,
            height,
        }),
        _ => Err(format!(
            "--crop {text:?} must be four numbers: x,y,width,height"
        )),
    }
}

/// Reads at most `limit + 1` bytes of `path`: a larger file is then refused by the core with its
/// reason, without first being read whole into memory.
fn read_capped(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(bytes)
}

/// The photos of an import: plain files in one folder, none larger than the normaliser accepts.
struct PhotoFolder {
    dir: PathBuf,
}

impl PhotoFolder {
    fn new(dir: PathBuf) -> Result<Self, String> {
        if !dir.is_dir() {
            return Err(format!(
                "the photos folder {} is not a folder",
                dir.display()
            ));
        }
        Ok(Self { dir })
    }
}

impl PhotoFiles for PhotoFolder {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        // The core names plain files only; checked again so that this type is safe on its own.
        if name.is_empty() || name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
            return Ok(None);
        }
        let path = self.dir.join(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            return Ok(None);
        };
        if !meta.is_file() {
            return Ok(None);
        }
        let max = tessera_print::photo::MAX_PHOTO_BYTES;
        if meta.len() > max as u64 {
            return Err(format!(
                "the photo {name:?} is {} KiB, more than the {} MiB allowed",
                meta.len() / 1024,
                max / (1024 * 1024)
            ));
        }
        read_capped(&path, max).map(Some)
    }
}

/// Files with fewer people than this import without a progress bar.
const PROGRESS_FROM: usize = 1_000;

/// The import's progress on standard error: a bar redrawn in place on a terminal, a line every
/// tenth of the way otherwise (a log file or a pipe gets no carriage returns).
struct ProgressBar {
    terminal: bool,
    /// The tenth last reported on a non-terminal, and whether anything was drawn.
    state: Mutex<(usize, bool)>,
}

impl ProgressBar {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new((usize::MAX, false)),
        }
    }

    fn show(&self, p: Progress) {
        let mut state = self.state.lock().expect("progress state");
        let mut err = std::io::stderr().lock();
        if p.stage == "writing" {
            if p.done == 0 && state.1 {
                let _ = write!(
                    err,
                    "{}writing the changes...",
                    if self.terminal { "\r\x1b[2K" } else { "" }
                );
                if !self.terminal {
                    let _ = writeln!(err);
                }
            }
            return;
        }
        if p.total < PROGRESS_FROM {
            return;
        }
        state.1 = true;
        let percent = p.done * 100 / p.total.max(1);
        if self.terminal {
            const WIDTH: usize = 30;
            let filled = p.done * WIDTH / p.total.max(1);
            let _ = write!(
                err,
                "\r[{}{}] {percent:>3}% {} of {} people checked",
                "#".repeat(filled),
                ".".repeat(WIDTH - filled),
                p.done,
                p.total
            );
            let _ = err.flush();
        } else if percent / 10 != state.0 {
            state.0 = percent / 10;
            let _ = writeln!(err, "{} of {} people checked ({percent}%)", p.done, p.total);
        }
    }

    /// Ends the bar's line, so that what follows starts on a line of its own.
    fn finish(&self) {
        let state = self.state.lock().expect("progress state");
        if self.terminal && state.1 {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// How many uids a list of the text report names before it says "and N more".
const LISTED: usize = 50;

fn uids<'a>(list: impl ExactSizeIterator<Item = &'a UserId>) -> String {
    let n = list.len();
    let mut text: Vec<String> = list.take(LISTED).map(|u| u.to_string()).collect();
    if n > LISTED {
        text.push(format!("and {} more (--json lists them all)", n - LISTED));
    }
    text.join(", ")
}

/// The report as a person reads it.
fn describe(r: &Report) -> String {
    let mut out = format!("{}: {} people read; {}\n", r.origin, r.read, r.summary());
    if r.dry_run {
        out.push_str("Dry run: nothing was written.\n");
    }
    if !r.created.is_empty() {
        out.push_str(&format!("created: {}\n", uids(r.created.iter())));
    }
    if !r.updated.is_empty() {
        out.push_str("updated:\n");
        for u in r.updated.iter().take(LISTED) {
            out.push_str(&format!("  {} ({})\n", u.uid, u.fields.join(", ")));
        }
        if r.updated.len() > LISTED {
            out.push_str(&format!(
                "  and {} more (--json lists them all)\n",
                r.updated.len() - LISTED
            ));
        }
    }
    if !r.disabled.is_empty() {
        out.push_str(&format!("disabled: {}\n", uids(r.disabled.iter())));
    }
    if !r.enabled.is_empty() {
        out.push_str(&format!("enabled again: {}\n", uids(r.enabled.iter())));
    }
    if !r.rejected.is_empty() {
        out.push_str("rejected (nothing of these lines was taken):\n");
        for x in &r.rejected {
            out.push_str(&format!("  {}: {}\n", x.at, x.reason));
        }
    }
    if !r.cards.is_empty() {
        out.push_str("cards deprovisioned:\n");
        for c in &r.cards {
            out.push_str(&format!(
                "  {} of {}: {} -> {}\n",
                c.serial, c.uid, c.from, c.to
            ));
        }
    }
    if !r.resumable.is_empty() {
        out.push_str("cards suspended when their holder left, who is back (resume them from the User page):\n");
        for c in &r.resumable {
            out.push_str(&format!(
                "  {} of {} (device {})\n",
                c.serial, c.uid, c.device
            ));
        }
    }
    out
}
