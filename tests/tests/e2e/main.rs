//! End-to-end tests: the real gateway on port 0 against the project's simulator on port 0.

mod admin;
mod auth;
mod bad_input;
mod burst;
mod capabilities;
mod crash;
mod errors;
mod failures;
mod faults;
mod leases;
mod maintainer;
mod metrics;
mod modes;
mod openai_sdk;
mod persistence;
mod processes;
mod provider_quirks;
mod quota;
mod quota_gauges;
mod ranking;
mod shutdown;
mod stalled_store;
mod streaming;
mod web_console;
mod web_pages;
mod web_search;
