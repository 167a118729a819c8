use super::*;

const VERSIONS: [&str; 8] = [
    "2.40.9",
    "2.40.10",
    "2.41.0-rc.1",
    "2.39.0",
    "v1.4.2",
    "1.4",
    "3.0.0",
    "0.9.1",
];

fn picks(constraint: &str) -> Option<String> {
    pick(VERSIONS.iter().copied(), constraint)
}

#[test]
fn exact_versions_and_the_newest_release() {
    assert_eq!(picks("2.40.9").as_deref(), Some("2.40.9"));
    assert_eq!(picks("2.41.0-rc.1").as_deref(), Some("2.41.0-rc.1"));
    assert_eq!(picks("1.4.2").as_deref(), Some("v1.4.2"));
    assert_eq!(picks("2.40.11"), None);
    for newest in ["", "*", "latest"] {
        assert_eq!(picks(newest).as_deref(), Some("3.0.0"), "{newest:?}");
    }
}

#[test]
fn masterminds_constraints() {
    let cases = [
        ("^2.40.0", Some("2.40.10")),
        ("~2.40.0", Some("2.40.10")),
        ("~> 2.39", Some("2.39.0")),
        ("2.40.x", Some("2.40.10")),
        ("2.x", Some("2.40.10")),
        (">=1.0 <2.0", Some("v1.4.2")),
        (">= 1.0, < 2.0", Some("v1.4.2")),
        ("1.0 - 2.39.5", Some("2.39.0")),
        ("<1.0.0 || >=3.0.0", Some("3.0.0")),
        ("<1", Some("0.9.1")),
        (">=2.40.0, !=2.40.10, <3", Some("2.40.9")),
        ("=<1.4.0", Some("1.4")),
        (">=2.41.0-rc.0, <3", Some("2.41.0-rc.1")),
        (">4", None),
        ("not a version", None),
    ];
    for (constraint, want) in cases {
        assert_eq!(picks(constraint).as_deref(), want, "{constraint:?}");
    }
}

#[test]
fn a_package_unpacks_to_its_chart_directory() {
    let work = tempfile::tempdir().unwrap();
    let package = work.path().join("demo-0.1.0.tgz");
    write_package(
        &package,
        &[
            (
                "demo/Chart.yaml",
                "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
            ),
            ("demo/templates/cm.yaml", "kind: ConfigMap\n"),
        ],
    );
    let dest = work.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    let chart = unpack(&package, &dest).unwrap();
    assert_eq!(chart, dest.join("demo"));
    assert!(chart.join("templates/cm.yaml").is_file());
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        unpack(&work.path().join("missing.tgz"), &empty),
        Err(ChartError::Package { .. })
    ));
}

/// Writes a chart package at `path`: a gzipped tarball of `files` (path, text).
pub(crate) fn write_package(path: &Path, files: &[(&str, &str)]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, body.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}
