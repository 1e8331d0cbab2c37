//! Maven coordinates and `maven-metadata.xml` (being written).

/// How an artifact is packaged, which is also its file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packaging {
    Zip,
    TarGz,
    Jar,
}
