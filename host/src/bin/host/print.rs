//! How results look: aligned text for people, JSON (`--json`) for programs.

use anyhow::Result;
use hookhost::HookComponent;
use hookhost::contract::Contract;
use hookhost::evolution::Evolution;
use hookhost::limits::format_size;
use hookhost::registry::{
    Actor, HookSummary, LiveHistory, LiveMove, LiveMoved, Published, ReleaseHistory, ReleaseView,
    StoredRun,
};
use hookhost::replay::ReplayReport;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn print_json(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A registry time as the JSON has it (RFC 3339).
fn when(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_else(|_| time.to_string())
}

/// Who did it, or `-` when it was not recorded.
fn who(actor: Option<&Actor>) -> String {
    actor.map_or_else(|| "-".to_owned(), Actor::to_string)
}

/// Prints rows as columns padded to their widest cell; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == last {
                    cell.to_string()
                } else {
                    format!("{cell:width$}", width = widths[i])
                }
            })
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn short(digest: &str) -> &str {
    // `sha256:` plus 12 hex digits identifies a component among any realistic number.
    digest.get(..19).unwrap_or(digest)
}

fn contract_lines(contract: &Contract) {
    println!("feature:      {}", contract.feature);
    println!(
        "cardinality:  {}",
        serde_json::to_value(contract.cardinality)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    println!("contract:     {}", contract.digest());
    println!("columns:");
    let width = contract
        .columns
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for column in &contract.columns {
        let required = if column.nullable {
            "nullable"
        } else {
            "required"
        };
        let description = column.description.as_deref().unwrap_or("");
        println!(
            "  {:width$}  {:12}  {required:8}  {description}",
            column.name,
            column.ty.name()
        );
    }
}

/// `host inspect FILE`.
pub fn component(hook: &HookComponent, as_json: bool) -> Result<()> {
    let contract = hook.contract();
    if as_json {
        return print_json(&json!({
            "digest": hook.digest(),
            "size": hook.size(),
            "contract_digest": contract.digest(),
            "contract": contract,
        }));
    }
    println!("digest:       {}", hook.digest());
    println!("size:         {} bytes", hook.size());
    contract_lines(contract);
    Ok(())
}

/// `host inspect NAME[@VERSION]`.
pub fn release(release: &ReleaseView, as_json: bool) -> Result<()> {
    if as_json {
        return print_json(release);
    }
    let live = if release.live { " (live)" } else { "" };
    println!("release:      {} v{}{live}", release.hook, release.version);
    println!("digest:       {}", release.digest);
    println!("size:         {} bytes", release.size);
    println!("created:      {}", when(release.created_at));
    println!(
        "published by: {}",
        release
            .published_by
            .as_ref()
            .map_or_else(|| "-".to_owned(), Actor::audit)
    );
    println!(
        "source ref:   {}",
        release.source_ref.as_deref().unwrap_or("-")
    );
    println!(
        "built by:     {}",
        release.built_by.as_deref().unwrap_or("-")
    );
    println!("config:       {}", release.config);
    println!(
        "limits:       fuel {} per record, memory {}, timeout {} ms",
        release.limits.fuel_per_record,
        format_size(release.limits.memory_bytes),
        release.limits.timeout_ms
    );
    contract_lines(&release.contract);
    Ok(())
}

/// `host publish`.
pub fn published(published: &Published, as_json: bool) -> Result<()> {
    if as_json {
        return print_json(published);
    }
    let release = &published.release;
    let what = if published.created {
        "created"
    } else {
        "existing"
    };
    println!(
        "{} v{} {} {what}",
        release.hook, release.version, release.digest
    );
    if let Evolution::Additive { added } = &published.evolution {
        println!("contract grew: new nullable column(s) {}", added.join(", "));
    }
    match (published.created, published.previous_live) {
        (true, Some(previous)) if release.live => {
            println!("live: v{previous} -> v{}", release.version)
        }
        (true, Some(previous)) => println!(
            "live: still v{previous} (`host live {} {}` moves it)",
            release.hook, release.version
        ),
        (true, None) => println!("live: v{}", release.version),
        (false, _) if !release.live => println!(
            "(not live: the live pointer is elsewhere; `host live {} {}` moves it)",
            release.hook, release.version
        ),
        (false, _) => {}
    }
    Ok(())
}

/// `host hooks`.
pub fn hooks(hooks: &[HookSummary], as_json: bool) -> Result<()> {
    if as_json {
        return print_json(&hooks);
    }
    if hooks.is_empty() {
        println!("no hooks yet: `host publish FILE.wasm --name NAME` registers one");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = hooks
        .iter()
        .map(|h| {
            vec![
                h.name.clone(),
                format!("v{}", h.live_version),
                format!("v{}", h.latest_version),
                h.contract.feature.clone(),
                h.contract.columns.len().to_string(),
                when(h.updated_at),
            ]
        })
        .collect();
    table(
        &["NAME", "LIVE", "LATEST", "FEATURE", "COLUMNS", "UPDATED"],
        &rows,
    );
    Ok(())
}

/// `host releases NAME`.
pub fn releases(history: &ReleaseHistory, as_json: bool) -> Result<()> {
    if as_json {
        return print_json(history);
    }
    let rows: Vec<Vec<String>> = history
        .releases
        .iter()
        .map(|r| {
            vec![
                format!("{}v{}", if r.live { "*" } else { " " }, r.version),
                short(&r.digest).to_owned(),
                when(r.created_at),
                who(r.published_by.as_ref()),
                r.source_ref.clone().unwrap_or_else(|| "-".into()),
                r.built_by.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            " VERSION",
            "DIGEST",
            "CREATED",
            "PUBLISHED_BY",
            "SOURCE_REF",
            "BUILT_BY",
        ],
        &rows,
    );
    println!("(* live)");
    println!("live pointer history:");
    moves(&history.live_history);
    Ok(())
}

/// The moves of a live pointer, one a line: when, from and to, why, who, the reason.
fn moves(moves: &[LiveMove]) {
    for moved in moves {
        let from = moved
            .from_version
            .map_or_else(|| "-".to_owned(), |v| format!("v{v}"));
        let reason = moved
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        println!(
            "  {}  {from} -> v{}  ({}) by {}{reason}",
            when(moved.moved_at),
            moved.to_version,
            moved.cause.as_str(),
            who(moved.moved_by.as_ref()),
        );
    }
}

/// `host live NAME VERSION`.
pub fn live(moved: &LiveMoved, as_json: bool) -> Result<()> {
    if as_json {
        return print_json(moved);
    }
    match moved.moved {
        true => println!(
            "{}: live v{} -> v{} {}",
            moved.hook, moved.from, moved.to, moved.release.digest
        ),
        false => println!(
            "{}: live is already v{} {} (nothing recorded)",
            moved.hook, moved.to, moved.release.digest
        ),
    }
    Ok(())
}

/// `host live NAME`: where the pointer is and every move it made.
pub fn live_history(history: &LiveHistory, as_json: bool) -> Result<()> {
    if as_json {
        return print_json(history);
    }
    println!("{}: live v{}", history.hook, history.live_version);
    println!("moves (oldest first):");
    moves(&history.moves);
    Ok(())
}

/// `host runs`.
pub fn runs(runs: &[StoredRun], as_json: bool) -> Result<()> {
    if as_json {
        let records: Vec<_> = runs.iter().map(|r| &r.record).collect();
        return print_json(&records);
    }
    if runs.is_empty() {
        println!("no runs recorded");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let r = &run.record;
            let hook = match (&r.hook.name, r.hook.version) {
                (Some(name), Some(version)) => format!("{name}@{version}"),
                _ => format!("file {}", short(&r.hook.digest)),
            };
            let c = r.records;
            vec![
                r.run_id.clone(),
                hook,
                r.status.as_str().to_owned(),
                format!("{}/{}/{}/{}", c.total, c.passed, c.rejected, c.errored),
                r.started_at.clone(),
                r.replay_of
                    .as_deref()
                    .map(|id| format!("replay of {id}"))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "RUN_ID",
            "HOOK",
            "STATUS",
            "TOTAL/PASSED/REJECTED/ERRORED",
            "STARTED",
            "",
        ],
        &rows,
    );
    Ok(())
}

/// `host show RUN_ID`: every field of the record, one per line, then what the registry adds.
pub fn run(run: &StoredRun, as_json: bool) -> Result<()> {
    if as_json {
        return print_json(run);
    }
    let record = serde_json::to_value(&run.record)?;
    let mut lines = Vec::new();
    flatten("", &record, &mut lines);
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in &lines {
        println!("{key:width$}  {value}");
    }
    println!("{:width$}  {}", "config", run.config);
    println!(
        "{:width$}  {}",
        "out_dir",
        run.out_dir.as_deref().unwrap_or("(not kept)")
    );
    println!("{:width$}  {}", "recorded_at", when(run.recorded_at));
    println!(
        "{:width$}  {}",
        "recorded_by",
        run.recorded_by
            .as_ref()
            .map_or_else(|| "-".to_owned(), Actor::audit)
    );
    Ok(())
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, out);
            }
        }
        serde_json::Value::String(text) => out.push((prefix.to_owned(), text.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// `host replay`.
pub fn replay(report: &ReplayReport, as_json: bool) -> Result<()> {
    if as_json {
        return print_json(&json!({
            "identical": report.identical(),
            "run_id": report.replay.run_id,
            "replay_of": report.original.run_id,
            "differences": report.differences,
            "out_dir": report.out_dir,
            "outputs": report.replay.outputs,
        }));
    }
    let c = report.replay.records;
    println!(
        "replay {} of run {}: {}: {} records: {} passed, {} rejected, {} errored",
        report.replay.run_id,
        report.original.run_id,
        report.replay.status,
        c.total,
        c.passed,
        c.rejected,
        c.errored
    );
    if report.identical() {
        println!(
            "identical: status, counts and the content of all {} outputs ({})",
            report.replay.outputs.len(),
            report
                .replay
                .outputs
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else {
        println!("differs:");
        for difference in &report.differences {
            println!(
                "  {}: was {}, now {}",
                difference.what, difference.original, difference.replay
            );
        }
    }
    if let Some(dir) = &report.out_dir {
        println!("output kept in {}", dir.display());
    }
    Ok(())
}

/// `host build`: the component's path, size and digest.
pub fn built(built: &hookhost::scaffold::Built, json: bool) -> Result<()> {
    if json {
        let value = serde_json::json!({
            "path": built.path,
            "digest": built.digest,
            "bytes": built.bytes,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "built {} ({} bytes) {}",
            built.path.display(),
            built.bytes,
            built.digest
        );
    }
    Ok(())
}
