//! The committed schema is what the Rust types say today: change a configuration type, run
//! `make schema`, commit the result (the construct validates against it).

#[test]
fn the_committed_schema_is_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join(shiftguard_schema::COMMITTED);
    let generated = shiftguard_schema::text();
    if std::env::var_os("SHIFTGUARD_WRITE_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: the configuration types changed; run `make schema` and commit it",
        path.display()
    );
}
