//! The supervisor: spawns the workers as linked children in dependency order,
//! restarts a failed child with the same arguments (handles follow through
//! their slots), and gives up after a restart budget so systemd restarts the
//! whole daemon.

mod actor;
mod budget;

pub use actor::{Supervisor, SupervisorArgs, SupervisorMessage};
pub use budget::RestartBudget;
