// `sqlx::migrate!` embeds ./migrations at compile time; make a new migration file rebuild
// this crate instead of silently shipping a binary without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
