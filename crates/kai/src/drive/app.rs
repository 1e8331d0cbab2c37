//! One app's deploy, driven: the deploy machine (`kai_core::deploy`) decides, this
//! runs what it asks through the [`Executor`] and [`fleet`](crate::fleet), feeds back
//! what happened, and tells it when a stop was asked for.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use futures_util::future::join_all;
use kai_core::config::Environment;
use kai_core::deploy::{Context, Deploy, Event, Request, What};
use kai_core::plan::placements;

use crate::drive::steps::Executor;
use crate::progress::Progress;
use crate::transport::{Place, Transport};
use kai_core::deploy::Report;

/// Runs one app's deploy (or rollback, or saved plan) to its end; `stop` says whether
/// a stop was asked for (checked before each round of work).
pub async fn drive_app<T: Transport>(
    exec: &Executor<'_, T>,
    environment: &Environment,
    ctx: Context<'_>,
    progress: &Progress,
    stop: &(dyn Fn() -> bool + Sync),
) -> Report {
    let (config, env, app) = (ctx.config, ctx.env, ctx.app);
    let places: BTreeMap<String, Place> =
        placements(config, env, app, &[]).unwrap_or_default().iter().map(|p| (p.host.clone(), Place::from(p))).collect();
    // Said when the artifact is about to move, not on a run that stages nothing.
    let mut source = match &ctx.what {
        What::Deploy(release) => Some(format!("{} {}: {}", app.name, release.version, release.source.describe())),
        _ => None,
    };
    let mut machine = Deploy::new(ctx);
    let mut stop_told = false;
    loop {
        if stop() && !stop_told {
            machine.handle(Event::Stop, SystemTime::now());
            stop_told = true;
        }
        let event = match machine.poll().clone() {
            Request::Done => break,
            Request::Run(tasks) => {
                if machine.phase() == "stage" {
                    if let Some(source) = source.take() {
                        progress.note(&source);
                    }
                }
                let phase = machine.phase();
                let hosts: Vec<&str> = tasks.iter().map(|t| t.host.as_str()).collect();
                match (phase, machine.plan()) {
                    ("roll" | "roll back", Some(plan)) => {
                        let first = plan.roll.iter().position(|r| hosts.contains(&r.host.as_str())).map_or(1, |i| i + 1);
                        progress.wave(&app.name, phase, &hosts, first, plan.roll.len());
                    }
                    _ => progress.phase(&app.name, phase, tasks.len()),
                }
                let began = Instant::now();
                let runs = tasks.iter().map(|task| async {
                    let place = places.get(&task.host).cloned().unwrap_or_else(|| Place::bare(&task.host));
                    let result = exec.run_task(&place, &task.steps).await;
                    progress.host_done(&app.name);
                    if matches!(phase, "roll" | "roll back" | "standby") {
                        progress.switched(&app.name, &task.host, phase, result.ok());
                    }
                    result
                });
                let results = join_all(runs).await;
                if phase == "stage" && results.iter().all(kai_core::deploy::TaskResult::ok) {
                    progress.staged(&app.name, &hosts, began.elapsed());
                }
                Event::Ran(results)
            }
            Request::Inspect { version, health } => {
                progress.phase(&app.name, machine.phase(), 0);
                let chosen: Vec<Place> = health.iter().filter_map(|h| places.get(h).cloned()).collect();
                let facts = machine.facts().clone();
                Event::Inspected(
                    crate::fleet::inspect(exec.http, exec.balancer, environment, app, &version, &chosen, &facts).await.into_result(),
                )
            }
        };
        machine.handle(event, SystemTime::now());
    }
    machine.report().clone()
}
