//! One app's deploy, driven: the deploy machine (`kai_core::deploy`) decides, this
//! runs what it asks through the [`Executor`] and [`fleet`](crate::fleet), feeds back
//! what happened, and tells it when a stop was asked for.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use futures_util::future::join_all;
use kai_core::config::Environment;
use kai_core::deploy::{Context, Deploy, Event, Request};
use kai_core::plan::placements;

use crate::executor::Executor;
use crate::progress::Progress;
use crate::report::AppReport;
use crate::transport::{Place, Transport};

/// Runs one app's deploy (or rollback, or saved plan) to its end.
pub async fn deploy_app<T: Transport>(exec: &Executor<'_, T>, environment: &Environment, ctx: Context<'_>, progress: &Progress) -> AppReport {
    let started = Instant::now();
    let (config, env, app) = (ctx.config, ctx.env, ctx.app);
    let places: BTreeMap<String, Place> =
        placements(config, env, app, &[]).unwrap_or_default().iter().map(|p| (p.host.clone(), Place::from(p))).collect();
    let mut machine = Deploy::new(ctx);
    let mut stop_told = false;
    loop {
        if crate::interrupt::requested() && !stop_told {
            machine.handle(Event::Stop, SystemTime::now());
            stop_told = true;
        }
        let event = match machine.poll().clone() {
            Request::Done => break,
            Request::Run(tasks) => {
                progress.phase(&app.name, machine.phase(), tasks.len());
                let runs = tasks.iter().map(|task| async {
                    let place = places.get(&task.host).cloned().unwrap_or_else(|| Place::bare(&task.host));
                    let result = exec.run_task(&place, &task.steps).await;
                    progress.host_done(&app.name);
                    result
                });
                Event::Ran(join_all(runs).await)
            }
            Request::Inspect { version, hosts } => {
                progress.phase(&app.name, machine.phase(), 0);
                let chosen: Vec<Place> = hosts.iter().filter_map(|h| places.get(h).cloned()).collect();
                let facts = machine.facts().clone();
                Event::Inspected(crate::fleet::inspect(exec.transport, exec.http, environment, app, &version, &chosen, &facts).await)
            }
        };
        machine.handle(event, SystemTime::now());
    }
    AppReport::new(machine.report(), started.elapsed())
}
