//! The `meme` plugin: a safe-for-work image post from a subreddit the team allows, never one
//! this place has seen in the last few days. The allow-list is config, checked here when the
//! command runs (the grammar only checks that a name looks like a subreddit).

pub mod reddit;

use rand::seq::IndexedRandom;

use self::reddit::{Listing, Post, Reddit};
use super::todo::without_mentions;
use super::{ActError, ActFuture, Ctx, Plugin};
use crate::command::Command;
use crate::render::{Block, Reply};
use crate::store::now_ms;

/// How long a post shown in a place is not shown there again.
const REPEAT_WINDOW_MS: i64 = 3 * 24 * 3600 * 1000;

#[derive(Default)]
pub struct Meme {
    reddit: Reddit,
}

impl Plugin for Meme {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a> {
        Box::pin(async move {
            let Command::Meme { subreddit } = cmd else {
                return Err(ActError::Internal(format!("meme plugin got `{cmd}`")));
            };
            let sub = choose_subreddit(ctx, subreddit.as_deref())?;
            self.meme(ctx, &sub).await
        })
    }
}

/// The subreddit to read: the one asked for if the team allows it, else any the team allows.
fn choose_subreddit(ctx: &Ctx<'_>, asked: Option<&str>) -> Result<String, ActError> {
    let ws = ctx.bot.workspace();
    let allowed = ws.config.teams.get(ctx.team).map(|t| t.subreddits.clone()).unwrap_or_default();
    if allowed.is_empty() {
        return Err(ActError::User(format!(
            "team `{}` allows no subreddits; an admin can list some under `subreddits` in its [teams.{}] table",
            ctx.team, ctx.team
        )));
    }
    match asked {
        Some(asked) => allowed.iter().find(|s| s.eq_ignore_ascii_case(asked)).cloned().ok_or_else(|| {
            let list: Vec<String> = allowed.iter().map(|s| format!("r/{s}")).collect();
            ActError::User(format!(
                "r/{asked} is not allowed for team `{}`; you may use {}",
                ctx.team,
                crate::catalog::or_list(list.iter().map(String::as_str))
            ))
        }),
        None => allowed
            .choose(&mut rand::rng())
            .cloned()
            .ok_or_else(|| ActError::Internal("allowed list emptied while choosing".into())),
    }
}

/// Why no post could be shown, when nothing failed; the later reason wins when both
/// listings were read.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Nothing {
    NoPosts,
    NoSafeImages,
    AllShown,
}

impl Meme {
    async fn meme(&self, ctx: &Ctx<'_>, sub: &str) -> Result<Reply, ActError> {
        let place = ctx.place.key();
        let now = now_ms();
        let store = ctx.bot.store();
        let shown =
            store.memes_shown(&place, now - REPEAT_WINDOW_MS).await.map_err(|e| ActError::User(e.to_string()))?;
        let mut nothing = Nothing::NoPosts;
        // Today's top posts when this place has seen everything that is hot.
        for listing in [Listing::Hot, Listing::TopToday] {
            let posts = self.reddit.posts(sub, listing).await.map_err(|e| ActError::User(e.to_string()))?;
            let safe: Vec<&Post> = posts.iter().filter(|p| p.is_safe_image()).collect();
            let fresh: Vec<&Post> = safe.iter().copied().filter(|p| !shown.contains(&p.id)).collect();
            let this = if posts.is_empty() {
                Nothing::NoPosts
            } else if safe.is_empty() {
                Nothing::NoSafeImages
            } else {
                Nothing::AllShown
            };
            nothing = nothing.max(this);
            let Some(post) = fresh.choose(&mut rand::rng()) else { continue };
            store
                .meme_shown(&place, &post.id, now, now - REPEAT_WINDOW_MS)
                .await
                .map_err(|e| ActError::User(e.to_string()))?;
            return Ok(reply(post));
        }
        Err(ActError::User(match nothing {
            Nothing::NoPosts => format!("r/{sub} has no posts right now; try another subreddit"),
            Nothing::NoSafeImages => format!("r/{sub} has no safe-for-work image posts right now; try again later"),
            Nothing::AllShown => {
                format!("every current image post from r/{sub} was already shown here; try again later")
            }
        }))
    }
}

fn reply(post: &Post) -> Reply {
    let title = without_mentions(&post.title);
    let image = post.image.clone().unwrap_or_default();
    Reply::done(title.clone()).with(Block::Image { url: image, alt: title, link: Some(post.link.clone()) }).text(
        format!(
            "r/{} · u/{} · {} points · {} comments",
            post.subreddit,
            without_mentions(&post.author),
            post.score,
            post.num_comments
        ),
    )
}
