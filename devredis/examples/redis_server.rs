//! Prints the `redis-server` Ferry's demo and tests use, obtaining one if
//! need be: `cargo run -q -p ferry-dev-redis --example redis_server`.

fn main() -> std::process::ExitCode {
    match ferry_dev_redis::redis_server() {
        Ok(path) => {
            println!("{}", path.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
