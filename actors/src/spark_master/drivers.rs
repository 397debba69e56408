//! Drivers submitted in cluster deploy mode, as part of the master core: each runs on a worker
//! with room for it, picked round-robin; a supervised driver that fails, or whose worker is
//! lost, is relaunched.

use super::core::{retire, MasterCore, Output, Peer, RecoveryState, WorkerState};
use ensemble_messages::spark::{DriverDesc, DriverRef, DriverState, FromMaster};
use serde::{Deserialize, Serialize};

/// A driver's persisted record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDriver {
    /// Its id.
    pub id: String,
    /// What it runs.
    pub desc: DriverDesc,
}

/// One driver as the master tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverInfo {
    /// Its id.
    pub id: String,
    /// What it runs.
    pub desc: DriverDesc,
    /// Its state.
    pub state: DriverState,
    /// The worker it runs on.
    pub worker: Option<String>,
}

impl DriverInfo {
    /// Whether it holds resources on its worker.
    pub fn is_running(&self) -> bool {
        self.state == DriverState::Running
    }
}

impl MasterCore {
    pub(super) fn restore_driver(&mut self, stored: StoredDriver) {
        self.drivers.insert(
            stored.id.clone(),
            DriverInfo {
                id: stored.id,
                desc: stored.desc,
                state: DriverState::Unknown,
                worker: None,
            },
        );
    }

    pub(super) fn submit_driver(&mut self, conn: u64, desc: DriverDesc) {
        if self.state != RecoveryState::Alive {
            // Spark accepts drivers only when ALIVE; the client tries the other masters.
            let master_url = self.settings.url.clone();
            self.send(conn, FromMaster::MasterInStandby { master_url });
            return;
        }
        if desc.command.is_empty() || desc.cores == 0 || desc.memory_mb == 0 {
            let reply = FromMaster::SubmitDriverResponse {
                driver_id: None,
                message: "a driver needs a command, at least 1 core and 1 MiB".into(),
            };
            self.send(conn, reply);
            return;
        }
        let id = format!("driver-{:x}-{:04}", self.epoch, self.next_driver);
        self.next_driver += 1;
        self.store(Output::PersistDriver(StoredDriver {
            id: id.clone(),
            desc: desc.clone(),
        }));
        self.drivers.insert(
            id.clone(),
            DriverInfo {
                id: id.clone(),
                desc,
                state: DriverState::Submitted,
                worker: None,
            },
        );
        let reply = FromMaster::SubmitDriverResponse {
            driver_id: Some(id.clone()),
            message: format!("Driver successfully submitted as {id}"),
        };
        self.send_stored(conn, reply);
        self.schedule();
    }

    /// Takes back the drivers a worker reports running; kills those it does not know.
    pub(super) fn adopt_drivers(&mut self, conn: u64, worker: &str, drivers: Vec<DriverRef>) {
        for d in drivers {
            match self.drivers.get_mut(&d.driver_id) {
                Some(info) if !info.state.is_finished() => {
                    info.state = DriverState::Running;
                    info.worker = Some(worker.to_string());
                }
                _ if self.state == RecoveryState::Alive => {
                    let msg = FromMaster::KillDriver {
                        driver_id: d.driver_id,
                        epoch: self.epoch,
                    };
                    self.send(conn, msg);
                }
                _ => {}
            }
        }
    }

    pub(super) fn driver_changed(&mut self, id: &str, state: DriverState) {
        let Some(d) = self.drivers.get_mut(id) else {
            return;
        };
        if !state.is_finished() || d.state.is_finished() {
            return;
        }
        if d.desc.supervise && matches!(state, DriverState::Failed | DriverState::Error) {
            // Relaunched: back to waiting for a worker.
            d.worker = None;
            d.state = DriverState::Submitted;
        } else {
            d.state = state;
            self.driver_ended(id);
        }
        self.schedule();
    }

    /// Kills a driver (the web UI's kill action).
    pub(super) fn kill_driver(&mut self, id: &str) {
        let Some(d) = self.drivers.get_mut(id).filter(|d| !d.state.is_finished()) else {
            return;
        };
        d.state = DriverState::Killed;
        let worker = d.worker.take();
        self.driver_ended(id);
        if let Some(conn) = worker.and_then(|w| self.conn_of(&Peer::Worker(w))) {
            let msg = FromMaster::KillDriver {
                driver_id: id.to_string(),
                epoch: self.epoch,
            };
            self.send(conn, msg);
        }
    }

    /// Drivers on a lost worker: relaunched when supervised, else ERROR.
    pub(super) fn drivers_lost(&mut self, worker: &str) {
        self.orphan_drivers(|d| d.worker.as_deref() == Some(worker) && d.is_running());
    }

    /// At the end of recovery, drivers no worker reported: relaunched when supervised, else
    /// ERROR (as Spark).
    pub(super) fn recover_orphan_drivers(&mut self) {
        self.orphan_drivers(|d| d.state == DriverState::Unknown);
    }

    /// Drivers matching `orphaned` lost their worker: supervised ones wait for another, the
    /// others end in ERROR.
    fn orphan_drivers(&mut self, orphaned: impl Fn(&DriverInfo) -> bool) {
        let mut forget = Vec::new();
        for d in self.drivers.values_mut().filter(|d| orphaned(d)) {
            d.worker = None;
            if d.desc.supervise {
                d.state = DriverState::Submitted;
            } else {
                d.state = DriverState::Error;
                forget.push(d.id.clone());
            }
        }
        for id in forget {
            self.driver_ended(&id);
        }
    }

    /// Forgets the record of the ended driver `id` and keeps it in memory, dropping the oldest
    /// ended drivers beyond spark.deploy.retainedDrivers.
    fn driver_ended(&mut self, id: &str) {
        self.store(Output::ForgetDriver(id.to_string()));
        let retained = self.settings.retained_drivers;
        for old in retire(&mut self.ended_drivers, id, retained) {
            self.drivers.remove(&old);
        }
    }

    /// Launches waiting drivers, each on the next worker (round-robin) with room for it.
    pub(super) fn schedule_drivers(&mut self) {
        let waiting: Vec<String> = self
            .drivers
            .values()
            .filter(|d| d.state == DriverState::Submitted)
            .map(|d| d.id.clone())
            .collect();
        if waiting.is_empty() {
            return;
        }
        let alive: Vec<String> = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Alive)
            .map(|w| w.spec.id.clone())
            .collect();
        if alive.is_empty() {
            return;
        }
        let mut free = self.free_table();
        for id in waiting {
            let Some(desc) = self.drivers.get(&id).map(|d| d.desc.clone()) else {
                continue;
            };
            if !free.may_fit(desc.cores, desc.memory_mb) {
                continue;
            }
            let start = self.next_driver_worker % alive.len();
            let pick = (0..alive.len())
                .map(|i| &alive[(start + i) % alive.len()])
                .find(|w| {
                    free.fits(w, desc.cores, desc.memory_mb)
                        && self.conn_of(&Peer::Worker((*w).clone())).is_some()
                })
                .cloned();
            let Some(worker) = pick else {
                continue;
            };
            self.next_driver_worker += 1;
            let Some(conn) = self.conn_of(&Peer::Worker(worker.clone())) else {
                continue;
            };
            free.take(&worker, desc.cores, desc.memory_mb);
            if let Some(d) = self.drivers.get_mut(&id) {
                d.state = DriverState::Running;
                d.worker = Some(worker);
            }
            let msg = FromMaster::LaunchDriver {
                driver_id: id,
                desc,
                epoch: self.epoch,
            };
            self.send(conn, msg);
        }
    }
}
