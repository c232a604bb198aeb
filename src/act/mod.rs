//! Plugins: the code that runs a confirmed, allowed `Command`. A plugin gets typed commands
//! only, and answers with a `Reply`; it never sees transport types.

pub mod approval;
pub mod core;
pub mod db;
pub mod deploy;
pub mod manifest;
pub mod meme;
pub mod progress;
pub mod release;
pub mod sql;
pub mod test;
pub mod todo;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::command::Command;
use crate::message::{Identity, Place};
use crate::pipeline::Bot;
use crate::render::Reply;

/// Why a plugin could not answer. `User` messages are shown as they are; `Internal` ones are
/// logged in full and shown as "internal error, ref …".
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("{0}")]
    User(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a plugin may know about the request besides the command.
pub struct Ctx<'a> {
    pub bot: &'a Bot,
    pub who: &'a Identity,
    pub place: &'a Place,
    /// The team whose rules allowed the command (empty for core commands).
    pub team: &'a str,
}

pub type ActFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply, ActError>> + Send + 'a>>;

pub trait Plugin: Send + Sync {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a>;
}

/// The plugins built into this binary, by the name teams enable them with.
pub struct Registry {
    plugins: BTreeMap<&'static str, Box<dyn Plugin>>,
}

impl Registry {
    pub fn builtin() -> Registry {
        let mut plugins: BTreeMap<&'static str, Box<dyn Plugin>> = BTreeMap::new();
        plugins.insert("core", Box::new(core::Core));
        plugins.insert("audit", Box::new(core::Audit));
        plugins.insert("db", Box::new(db::Db));
        plugins.insert("deploy", Box::new(deploy::Deploy));
        plugins.insert("release", Box::new(release::Release));
        plugins.insert("test", Box::new(test::Test));
        plugins.insert("meme", Box::new(meme::Meme::default()));
        plugins.insert("todo", Box::new(todo::Todo));
        plugins.insert("manifest", Box::new(manifest::Manifest));
        Registry { plugins }
    }

    pub fn get(&self, name: &str) -> Option<&dyn Plugin> {
        self.plugins.get(name).map(|p| p.as_ref())
    }
}
