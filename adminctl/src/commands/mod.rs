//! One module per subcommand.

pub mod models;
