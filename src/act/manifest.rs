//! The `manifest` plugin: renders a template into a Kubernetes Job or Deployment and shows it
//! with the `kubectl apply -f` line. lazyops never applies it: the write is done by a person,
//! with their own credentials, after reading it.

use super::{ActError, ActFuture, Ctx, Plugin};
use crate::command::Command;
use crate::render::{Block, Reply};

pub struct Manifest;

impl Plugin for Manifest {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a> {
        Box::pin(async move {
            let Command::Manifest { template, params } = cmd else {
                return Err(ActError::Internal(format!("manifest plugin got `{cmd}`")));
            };
            let ws = ctx.bot.workspace();
            let Some(t) = ws.manifests.get(template) else {
                return Err(ActError::User(format!("manifest template `{template}` is no longer configured")));
            };
            let rendered = t.render(params).map_err(|e| ActError::User(e.to_string()))?;
            let o = &rendered.object;
            let file = format!("{}.yaml", o.name);
            let mut fields =
                vec![("kind".to_string(), o.kind.name().to_string()), ("name".to_string(), o.name.clone())];
            if let Some(ns) = &o.namespace {
                fields.push(("namespace".into(), ns.clone()));
            }
            for image in &o.images {
                fields.push(("container".into(), image.clone()));
            }
            Ok(Reply::done(format!("{} {} is ready to apply; lazyops does not apply it", o.kind.name(), o.name))
                .with(Block::Fields { fields })
                .with(Block::Code { lang: Some("yaml".into()), text: rendered.yaml.clone() })
                .text(format!("Save it as {file}, read it, then apply it yourself:"))
                .with(Block::Code { lang: Some("sh".into()), text: format!("kubectl apply -f {file}") }))
        })
    }
}
