//! Maven coordinates, where the repository layout puts an artifact, and the version
//! list of an artifact's `maven-metadata.xml`.

use std::fmt;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;

/// How an artifact is packaged, which is also its file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packaging {
    Zip,
    TarGz,
    Jar,
}

impl Packaging {
    /// Every packaging, in the order the documentation lists them.
    pub const ALL: [Packaging; 3] = [Packaging::Zip, Packaging::TarGz, Packaging::Jar];

    /// The file extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            Packaging::Zip => "zip",
            Packaging::TarGz => "tar.gz",
            Packaging::Jar => "jar",
        }
    }

    /// The packaging named by its extension, exactly as the configuration writes it.
    pub fn parse(s: &str) -> Option<Packaging> {
        Packaging::ALL.into_iter().find(|p| p.extension() == s)
    }
}

impl fmt::Display for Packaging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// One artifact file in a Maven repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coordinates {
    pub group: String,
    pub artifact: String,
    pub version: String,
    /// An empty classifier counts as none.
    pub classifier: Option<String>,
    pub packaging: Packaging,
}

impl Coordinates {
    /// The path below the repository root, e.g.
    /// `org/example/svc/jmsadmin-assembly/10.60.0/jmsadmin-assembly-10.60.0-standalone.zip`.
    pub fn artifact_path(&self) -> String {
        format!("{}/{}/{}", artifact_dir(&self.group, &self.artifact), self.version, self.file_name())
    }

    /// The file name alone, e.g. `jmsadmin-assembly-10.60.0-standalone.zip`.
    pub fn file_name(&self) -> String {
        let extension = self.packaging.extension();
        match self.classifier.as_deref().filter(|c| !c.is_empty()) {
            Some(classifier) => format!("{}-{}-{classifier}.{extension}", self.artifact, self.version),
            None => format!("{}-{}.{extension}", self.artifact, self.version),
        }
    }
}

/// The path of an artifact's metadata below the repository root, e.g.
/// `org/example/svc/jmsadmin-assembly/maven-metadata.xml`.
pub fn metadata_path(group: &str, artifact: &str) -> String {
    format!("{}/maven-metadata.xml", artifact_dir(group, artifact))
}

fn artifact_dir(group: &str, artifact: &str) -> String {
    format!("{}/{artifact}", group.replace('.', "/"))
}

/// Why a `maven-metadata.xml` could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("maven-metadata.xml is not well-formed XML (at byte {position}): {reason}")]
    Malformed { position: u64, reason: String },
    #[error("maven-metadata.xml has no <metadata><versioning> element")]
    MissingVersioning,
}

/// The `<versioning><versions><version>` list of an artifact-level
/// `maven-metadata.xml`, in file order (upload order, not version order).
///
/// `<release>` and `<latest>` are ignored on purpose: they name the last upload.
pub fn parse_metadata(xml: &str) -> Result<Vec<String>, MetadataError> {
    let mut reader = Reader::from_str(xml);
    let mut scan = Scan::default();
    loop {
        let event = reader.read_event().map_err(|e| malformed(reader.error_position(), e.to_string()))?;
        if matches!(event, Event::Eof) {
            break;
        }
        scan.feed(event).map_err(|reason| malformed(reader.buffer_position(), reason))?;
    }
    scan.finish(reader.buffer_position())
}

fn malformed(position: u64, reason: String) -> MetadataError {
    MetadataError::Malformed { position, reason }
}

const VERSIONING: [&str; 2] = ["metadata", "versioning"];
const VERSION: [&str; 4] = ["metadata", "versioning", "versions", "version"];

/// What has been read so far: the open elements and the versions found.
#[derive(Default)]
struct Scan {
    path: Vec<String>,
    has_versioning: bool,
    versions: Vec<String>,
    text: String,
}

impl Scan {
    fn feed(&mut self, event: Event<'_>) -> Result<(), String> {
        match event {
            Event::Start(tag) => self.open(&tag)?,
            Event::Empty(tag) => {
                self.open(&tag)?;
                self.close();
            }
            Event::End(_) => self.close(),
            Event::Text(text) if self.in_version() => {
                self.text.push_str(&text.decode().map_err(|e| e.to_string())?);
            }
            Event::CData(data) if self.in_version() => {
                self.text.push_str(&data.decode().map_err(|e| e.to_string())?);
            }
            Event::GeneralRef(reference) if self.in_version() => {
                self.text.push_str(&resolve(&reference)?);
            }
            _ => {}
        }
        Ok(())
    }

    fn in_version(&self) -> bool {
        self.path == VERSION
    }

    /// Element names are matched without a namespace prefix.
    fn open(&mut self, tag: &BytesStart<'_>) -> Result<(), String> {
        let name = std::str::from_utf8(tag.local_name().into_inner()).map_err(|e| format!("element name is not UTF-8: {e}"))?;
        self.path.push(name.to_owned());
        self.has_versioning |= self.path == VERSIONING;
        self.text.clear();
        Ok(())
    }

    fn close(&mut self) {
        if self.in_version() {
            let version = self.text.trim();
            if !version.is_empty() {
                self.versions.push(version.to_owned());
            }
        }
        self.path.pop();
    }

    fn finish(self, end: u64) -> Result<Vec<String>, MetadataError> {
        if let Some(open) = self.path.last() {
            return Err(malformed(end, format!("the file ends inside <{open}>")));
        }
        if !self.has_versioning {
            return Err(MetadataError::MissingVersioning);
        }
        Ok(self.versions)
    }
}

/// The text of `&amp;`-style and `&#38;`-style references.
fn resolve(reference: &BytesRef<'_>) -> Result<String, String> {
    if let Some(c) = reference.resolve_char_ref().map_err(|e| e.to_string())? {
        return Ok(c.to_string());
    }
    let name = reference.decode().map_err(|e| e.to_string())?;
    quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned).ok_or_else(|| format!("unknown entity &{name};"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jmsadmin(classifier: Option<&str>, packaging: Packaging) -> Coordinates {
        Coordinates {
            group: "org.example.svc".into(),
            artifact: "jmsadmin-assembly".into(),
            version: "10.60.0".into(),
            classifier: classifier.map(str::to_owned),
            packaging,
        }
    }

    #[test]
    fn packaging_names_are_extensions() {
        for packaging in Packaging::ALL {
            assert_eq!(Packaging::parse(packaging.extension()), Some(packaging));
            assert_eq!(packaging.to_string(), packaging.extension());
        }
        assert_eq!(Packaging::parse("tar.gz"), Some(Packaging::TarGz));
        assert_eq!(Packaging::parse("tgz"), None);
        assert_eq!(Packaging::parse("ZIP"), None);
        assert_eq!(Packaging::parse(""), None);
    }

    #[test]
    fn artifact_paths_follow_the_repository_layout() {
        let zip = jmsadmin(Some("standalone"), Packaging::Zip);
        assert_eq!(zip.artifact_path(), "org/example/svc/jmsadmin-assembly/10.60.0/jmsadmin-assembly-10.60.0-standalone.zip");
        assert_eq!(zip.file_name(), "jmsadmin-assembly-10.60.0-standalone.zip");

        let tar = jmsadmin(None, Packaging::TarGz);
        assert_eq!(tar.artifact_path(), "org/example/svc/jmsadmin-assembly/10.60.0/jmsadmin-assembly-10.60.0.tar.gz");
        assert_eq!(jmsadmin(Some(""), Packaging::Jar).file_name(), "jmsadmin-assembly-10.60.0.jar");
    }

    #[test]
    fn metadata_sits_beside_the_version_folders() {
        assert_eq!(metadata_path("org.example.svc", "jmsadmin-assembly"), "org/example/svc/jmsadmin-assembly/maven-metadata.xml");
        assert_eq!(metadata_path("solo", "app"), "solo/app/maven-metadata.xml");
    }

    const ARTIFACTORY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>org.example.svc</groupId>
  <artifactId>jmsadmin-assembly</artifactId>
  <version>10.8.1</version>
  <versioning>
    <latest>10.8.2</latest>
    <release>10.8.2</release>
    <versions>
      <version>10.8.1</version>
      <version>10.10.0</version>
      <version>10.60.0</version>
      <version>10.8.2</version>
    </versions>
    <lastUpdated>20240611093012</lastUpdated>
  </versioning>
</metadata>
"#;

    const NEXUS: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<metadata modelVersion=\"1.1.0\" xmlns=\"http://maven.apache.org/METADATA/1.1.0\" \
xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
xsi:schemaLocation=\"http://maven.apache.org/METADATA/1.1.0 https://maven.apache.org/xsd/repository-metadata-1.1.0.xsd\">\r\n\
  <!-- generated by Nexus -->\r\n\
  <groupId>org.example.svc</groupId>\r\n\
  <artifactId>telenormobil</artifactId>\r\n\
  <versioning>\r\n\
    <release>2.4.1</release>\r\n\
    <versions>\r\n\
      <version>\r\n        2.3.0\r\n      </version>\r\n\
      <version>2.4.0-SNAPSHOT</version>\r\n\
      <version><![CDATA[2.4.0]]></version>\r\n\
      <version>2.4.1</version>\r\n\
      <version/>\r\n\
    </versions>\r\n\
    <lastUpdated>20240102030405</lastUpdated>\r\n\
  </versioning>\r\n\
</metadata>\r\n";

    #[test]
    fn artifactory_metadata_lists_versions_in_file_order() {
        // The top-level <version> and <release>/<latest> are not part of the list.
        assert_eq!(
            parse_metadata(ARTIFACTORY),
            Ok(vec!["10.8.1".to_owned(), "10.10.0".to_owned(), "10.60.0".to_owned(), "10.8.2".to_owned(),])
        );
    }

    #[test]
    fn nexus_metadata_with_namespace_crlf_and_cdata() {
        assert_eq!(
            parse_metadata(NEXUS),
            Ok(vec!["2.3.0".to_owned(), "2.4.0-SNAPSHOT".to_owned(), "2.4.0".to_owned(), "2.4.1".to_owned(),])
        );
    }

    #[test]
    fn references_in_versions_are_resolved() {
        let xml = "<metadata><versioning><versions>\
                   <version>1.0&#45;rc&#x31;</version><version>a&amp;b</version>\
                   </versions></versioning></metadata>";
        assert_eq!(parse_metadata(xml), Ok(vec!["1.0-rc1".to_owned(), "a&b".to_owned()]));
    }

    #[test]
    fn empty_version_lists() {
        for xml in [
            "<metadata><versioning><versions/></versioning></metadata>",
            "<metadata><versioning><versions>\n</versions></versioning></metadata>",
            "<metadata><versioning><lastUpdated>20240101000000</lastUpdated></versioning></metadata>",
            "<metadata><versioning/></metadata>",
        ] {
            assert_eq!(parse_metadata(xml), Ok(Vec::new()), "{xml}");
        }
    }

    #[test]
    fn metadata_without_versioning_is_an_error() {
        for xml in [
            "",
            "<metadata><groupId>g</groupId><artifactId>a</artifactId></metadata>",
            "<metadata><versions><version>1.0</version></versions></metadata>",
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        ] {
            assert_eq!(parse_metadata(xml), Err(MetadataError::MissingVersioning), "{xml}");
        }
    }

    #[test]
    fn malformed_xml_is_an_error_with_position() {
        let mismatched = "<metadata><versioning><versions></versioning></metadata>";
        let Err(MetadataError::Malformed { position, reason }) = parse_metadata(mismatched) else {
            panic!("mismatched end tag accepted");
        };
        assert_eq!(position, 32, "{reason}");
        assert!(reason.contains("versioning"), "{reason}");

        let truncated = &ARTIFACTORY[..ARTIFACTORY.len() / 2];
        let Err(MetadataError::Malformed { reason, .. }) = parse_metadata(truncated) else {
            panic!("truncated metadata accepted");
        };
        assert!(reason.starts_with("the file ends inside <"), "{reason}");

        for xml in [
            "<metadata><versioning><versions><version>1.0</versions>",
            "<metadata><versioning><versions><version>&bogus;</version></versions></versioning></metadata>",
            "<metadata><versioning><versions><version>1.0</version",
            "<metadata><versioning></metadata>",
        ] {
            assert!(matches!(parse_metadata(xml), Err(MetadataError::Malformed { .. })), "{xml}");
        }
    }

    #[test]
    fn errors_read_well() {
        let error = malformed(7, "expected `</versions>`".into());
        assert_eq!(error.to_string(), "maven-metadata.xml is not well-formed XML (at byte 7): expected `</versions>`");
        assert_eq!(MetadataError::MissingVersioning.to_string(), "maven-metadata.xml has no <metadata><versioning> element");
    }
}
