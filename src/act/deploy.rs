//! The `deploy` plugin: `deploy version <service> <env>`, with the neighbouring environments
//! read at the same time for the comparison.

use super::{ActError, ActFuture, Ctx, Plugin};
use crate::command::Command;
use crate::deploy::{self, Deployed};
use crate::render::{Block, Reply};

pub struct Deploy;

impl Plugin for Deploy {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a> {
        Box::pin(async move {
            match cmd {
                Command::DeployVersion { service, env } => version(ctx, service, env).await,
                other => Err(ActError::Internal(format!("deploy plugin got `{other}`"))),
            }
        })
    }
}

async fn version(ctx: &Ctx<'_>, service: &str, env: &str) -> Result<Reply, ActError> {
    let ws = ctx.bot.workspace();
    let others = deploy::neighbours(&ws, service, env);
    let (main, rest) = tokio::join!(deploy::read(&ws, service, env), async {
        let mut out = Vec::new();
        for e in &others {
            out.push((e.clone(), deploy::read(&ws, service, e).await));
        }
        out
    });
    let d = main.map_err(|e| ActError::User(e.to_string()))?;
    let mut reply = Reply::done(format!("{service} ({env}): {}", d.version)).with(Block::Fields { fields: fields(&d) });
    for (other, res) in rest {
        reply = match res {
            Ok(o) => reply.text(deploy::sentence(env, &d, &other, &o)),
            Err(e) => reply.text(crate::redact::redact(&format!("{other}: cannot read its version ({e})"))),
        };
    }
    Ok(reply)
}

fn fields(d: &Deployed) -> Vec<(String, String)> {
    let mut f = vec![("version".to_string(), d.version.clone()), ("source".to_string(), d.source.clone())];
    if let Some(c) = &d.commit {
        f.push(("commit".into(), c.clone()));
    }
    if let Some(t) = d.deployed_at {
        f.push(("deployed".into(), deploy::when(t, time::OffsetDateTime::now_utc())));
    }
    if let Some(x) = &d.detail {
        f.push(("detail".into(), x.clone()));
    }
    f
}
