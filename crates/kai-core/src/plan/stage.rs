//! Staging: the artifact fetched (pulled by the host or pushed from here), checked,
//! unpacked into a temporary folder and renamed into `releases/<version>`, with its
//! properties, checksum and run settings recorded.

use super::*;

/// How much longer than its own limit kai waits for a step that runs an app script
/// (the host stops the script at the limit, then kills it 5 s later).
pub(super) const SCRIPT_GRACE: Duration = Duration::from_secs(15);

/// How long a host may take to connect to the repository.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The planner with the artifact to install: everything staging needs.
pub(super) struct Stager<'a> {
    pub(super) planner: &'a Planner<'a>,
    pub(super) release: &'a Release,
}

impl<'a> std::ops::Deref for Stager<'a> {
    type Target = Planner<'a>;

    fn deref(&self) -> &Planner<'a> {
        self.planner
    }
}

impl Stager<'_> {
    pub(super) fn download(&self) -> String {
        format!("downloads/{}", self.release.file_name)
    }

    pub(super) fn stage(&self, host: &str, facts: &HostFacts) -> Result<Vec<Step>, PlanError> {
        let mut dirs = vec!["kai_mkdir", "releases", "downloads", ".kai/checksums"];
        if self.release.local.is_some() {
            dirs.push(crate::local_build::BUILDS_DIR);
        }
        let mut steps = vec![Step::run(StepKind::Prepare, Command::new(dirs))];
        let recorded = facts.checksums.get(self.version());
        let expected = self.release.checksum.to_string();
        let present = facts.releases.iter().any(|r| r == self.version());
        if present && recorded == Some(&expected) {
            steps.extend(self.properties(host, &self.release_dir(), false));
            steps.extend(self.record(host));
            return Ok(steps);
        }
        self.check_current(host, facts)?;
        self.check_disk(host, facts)?;
        for stale in &facts.stale {
            steps.push(Step::run(StepKind::Prepare, Command::new(["rm", "-rf", &format!("releases/{stale}")])));
        }
        steps.push(self.fetch());
        steps.extend(self.unpack());
        steps.extend(self.properties(host, &self.temp_dir(), true));
        if present {
            steps.push(Step::run(StepKind::Install, helpers::replace(self.version())));
        }
        steps.push(Step::run(StepKind::Install, Command::new(["mv", "-T", &self.temp_dir(), &self.release_dir()])));
        steps.extend(self.record(host));
        steps.push(Step::run(StepKind::Install, Command::new(["rm", "-f", &self.download()])));
        Ok(steps)
    }

    /// A host whose current release is this version but not this artifact is refused:
    /// kai never rewrites the release that runs.
    pub(super) fn check_current(&self, host: &str, facts: &HostFacts) -> Result<(), PlanError> {
        let recorded = facts.checksums.get(self.version());
        let expected = self.release.checksum.to_string();
        let present = facts.releases.iter().any(|r| r == self.version());
        if present && facts.current.as_deref() == Some(self.version()) && recorded != Some(&expected) {
            return Err(PlanError::CurrentDiffers {
                app: self.app.name.clone(),
                host: host.into(),
                version: self.version().into(),
                recorded: recorded.cloned().unwrap_or_else(|| "nothing".into()),
                expected,
            });
        }
        Ok(())
    }

    /// The record of the release on `host`: its checksum, then its settings; for a
    /// local build, who pushed it from where.
    pub(super) fn record(&self, host: &str) -> Vec<Step> {
        let runs = RunSettings::configured(self.environment, self.app, host, self.version).to_line();
        let contents = format!("{}\n{}\n{runs}\n", self.release.checksum, settings_line(self.environment, self.app, host, self.version));
        let mut steps = vec![Step::run(StepKind::Install, helpers::write_file(&format!(".kai/checksums/{}", self.version()), &contents))];
        if let Some(local) = &self.release.local {
            let line = serde_json::to_string(local).expect("a local build always serializes");
            steps.push(Step::run(StepKind::Install, helpers::write_file(&LocalBuild::record_path(self.version()), &format!("{line}\n"))));
        }
        steps
    }

    /// For a server that runs the version already, stopped: the new settings.
    pub(super) fn reconfigure(&self, host: &str) -> Vec<Step> {
        let mut steps: Vec<Step> = self.properties(host, &self.release_dir(), false).into_iter().collect();
        steps.extend(self.record(host));
        steps
    }

    /// What puts back the settings a server ran with (read from it before the deploy).
    pub(super) fn restore(&self, facts: &HostFacts) -> Vec<Step> {
        let mut steps = Vec::new();
        if let (Some(file), Some(old)) = (&self.app.properties_file, &facts.properties) {
            // A value that held a secret is shown as one, whatever its key says.
            let secret = self.app.secret_keys(&self.environment.name);
            let holds_secret = |l: &str| parse_properties(l).first().is_some_and(|(k, _)| secret.contains(k));
            let shown: String = old
                .lines()
                .map(|l| match l.split_once('=') {
                    Some((k, _)) if holds_secret(l) => format!("{k}={}\n", crate::mask::SECRET),
                    Some((k, v)) => format!("{k}={}\n", crate::mask::value(k, v)),
                    None => format!("{l}\n"),
                })
                .collect();
            steps.push(Step::run(StepKind::SwitchBack, helpers::write_masked(&format!("{}/{file}", self.release_dir()), old, &shown)));
        }
        if let Some(sum) = facts.checksums.get(self.version()) {
            let mut settings = facts.settings.get(self.version()).map(|s| format!("{s}\n")).unwrap_or_default();
            if let Some(runs) = facts.run_settings.get(self.version()) {
                settings = format!("{}{}\n", if settings.is_empty() { "\n".to_owned() } else { settings }, runs.to_line());
            }
            let contents = format!("{sum}\n{settings}");
            steps.push(Step::run(StepKind::SwitchBack, helpers::write_file(&format!(".kai/checksums/{}", self.version()), &contents)));
        }
        steps
    }

    pub(super) fn check_disk(&self, host: &str, facts: &HostFacts) -> Result<(), PlanError> {
        let (Some(size), Some(free)) = (self.release.size, facts.free_bytes) else { return Ok(()) };
        let needed = size.saturating_mul(3);
        if free < needed {
            let mib = |b: u64| b.div_ceil(1024 * 1024);
            return Err(PlanError::DiskSpace {
                app: self.app.name.clone(),
                host: host.into(),
                free: free / (1024 * 1024),
                needed: mib(needed),
            });
        }
        Ok(())
    }

    pub(super) fn download_part(&self) -> String {
        format!("{}.part", self.download())
    }

    /// After a failed stage: the temporary release and what was being downloaded.
    pub(super) fn abort(&self) -> Vec<Step> {
        vec![Step::run(StepKind::CleanUp, Command::new(["rm", "-rf", &self.temp_dir(), &self.download_part()]))]
    }

    /// The artifact onto the host, verified against its checksum before it gets its
    /// name: uploaded by kai, or downloaded by the host.
    pub(super) fn fetch(&self) -> Step {
        let (checksum, dest) = (&self.release.checksum, self.download());
        match &self.release.source {
            Source::Push { local } => {
                Step::new(StepKind::Fetch, Action::Upload { local: local.clone(), command: helpers::receive(&dest, checksum) })
                    .limit(self.fetch_timeout)
            }
            Source::Pull { url, auth } => {
                let limits = DownloadLimits { connect: CONNECT_TIMEOUT, total: self.fetch_timeout };
                Step::run(StepKind::Fetch, helpers::download(url, &dest, checksum, *auth, limits)).limit(self.fetch_timeout + SCRIPT_GRACE)
            }
        }
    }

    pub(super) fn unpack(&self) -> Vec<Step> {
        let (download, temp) = (self.download(), self.temp_dir());
        let mkdir = Step::run(StepKind::Unpack, Command::new(["mkdir", "-p", &temp]));
        let links = Step::run(StepKind::Unpack, helpers::contained(&temp)).limit(self.fetch_timeout);
        let inspect = |argv: &[&str]| {
            Step::new(StepKind::Unpack, Action::Inspect { command: Command::new(argv.iter().copied()), check: OutputCheck::ArchivePaths })
                .limit(self.fetch_timeout)
        };
        match self.app.packaging {
            Packaging::TarGz => vec![
                mkdir,
                inspect(&["tar", "-tzf", &download]),
                Step::run(StepKind::Unpack, Command::new(["tar", "-xzpf", &download, "-C", &temp, "--no-same-owner"]))
                    .limit(self.fetch_timeout),
                links,
            ],
            // unzip makes the folder it extracts into.
            Packaging::Zip => vec![
                inspect(&["unzip", "-Z1", &download]),
                Step::run(StepKind::Unpack, Command::new(["unzip", "-q", &download, "-d", &temp])).limit(self.fetch_timeout),
                links,
            ],
            Packaging::Jar => {
                vec![mkdir, Step::run(StepKind::Unpack, Command::new(["cp", &download, &format!("{temp}/{}.jar", self.app.artifact)]))]
            }
        }
    }
}
