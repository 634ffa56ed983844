//! The shipped data is found through `env!("CARGO_MANIFEST_DIR")`, a path baked in at build
//! time. Cargo keeps a crate's build when its checkout moves and its sources look older than
//! the build (a build cache shared by several checkouts, or a copy of the tree that kept its
//! file times), and the baked path then names a folder that may be gone. Watching the data
//! folders by their absolute paths makes such a move rebuild this crate: a watched path that
//! no longer exists counts as changed.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    for data in ["h100-80gb", "parvagpu-a100-80gb"] {
        println!("cargo:rerun-if-changed={dir}/{data}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
