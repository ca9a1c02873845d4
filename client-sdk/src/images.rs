//! Choosing a VM image by name.
//!
//! A request pays for an image *id* (a content hash); people think in
//! names (`debian`). Every operator's node announces, through consensus,
//! which image ids it boots and what its catalog calls them; any node's API
//! serves that catalog (`GET /images`). [`resolve`] turns a name into the
//! id backed by the most operator stake. A name is only a label operators
//! chose: the id it resolves to is what the request records, is shown to
//! the customer before paying, and is what the assigned operator must
//! boot.

/// One image of the catalog a node serves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "rpc", derive(serde::Deserialize))]
pub struct CatalogImage {
    /// The image id, 64 hex characters.
    pub id: String,
    /// What its operators call it, most stake first.
    pub names: Vec<String>,
    pub operators: usize,
    /// Stake of the operators that serve it, lamports.
    pub stake: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageChoiceError {
    #[error("no operator announces an image called `{wanted}` (known: {known})")]
    Unknown { wanted: String, known: String },
    #[error(
        "`{wanted}` names {count} images with equal operator stake ({ids}); pass one id with --image"
    )]
    Ambiguous {
        wanted: String,
        count: usize,
        ids: String,
    },
    #[error("`{0}` is not an image id (64 hex characters) or a name")]
    Malformed(String),
}

/// Whether image name `name` answers to `wanted`: the whole name, or its
/// first word (`debian` for `debian (bookworm, ...)`), ignoring case. Nodes
/// match their own catalogs by the same rule.
pub fn answers_to(name: &str, wanted: &str) -> bool {
    name.eq_ignore_ascii_case(wanted)
        || name
            .split_whitespace()
            .next()
            .is_some_and(|first| first.eq_ignore_ascii_case(wanted))
}

/// `wanted` as an id if it is 64 hex characters, else the catalog's image
/// of that name backed by the most stake (an equal top is ambiguous).
pub fn choose(catalog: &[CatalogImage], wanted: &str) -> Result<[u8; 32], ImageChoiceError> {
    let wanted = wanted.trim();
    let mut id = [0u8; 32];
    if wanted.len() == 64 && hex::decode_to_slice(wanted, &mut id).is_ok() {
        return Ok(id);
    }
    if wanted.is_empty() || wanted.len() > 64 {
        return Err(ImageChoiceError::Malformed(wanted.to_string()));
    }
    let mut matches: Vec<&CatalogImage> = catalog
        .iter()
        .filter(|image| image.names.iter().any(|n| answers_to(n, wanted)))
        .collect();
    matches.sort_by_key(|image| std::cmp::Reverse(image.stake));
    match matches.as_slice() {
        [] => {
            let mut known: Vec<&str> = catalog
                .iter()
                .flat_map(|i| i.names.iter().map(String::as_str))
                .collect();
            known.sort_unstable();
            known.dedup();
            Err(ImageChoiceError::Unknown {
                wanted: wanted.to_string(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            })
        }
        [best, second, ..] if best.stake == second.stake => {
            let tied: Vec<&str> = matches
                .iter()
                .filter(|i| i.stake == best.stake)
                .map(|i| i.id.as_str())
                .collect();
            Err(ImageChoiceError::Ambiguous {
                wanted: wanted.to_string(),
                count: tied.len(),
                ids: tied.join(", "),
            })
        }
        [best, ..] => {
            hex::decode_to_slice(&best.id, &mut id)
                .map_err(|_| ImageChoiceError::Malformed(best.id.clone()))?;
            Ok(id)
        }
    }
}

/// The catalog a node's API (`http://host:port`) serves.
#[cfg(feature = "rpc")]
pub async fn fetch_catalog(node_api: &str) -> Result<Vec<CatalogImage>, crate::ClientError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        images: Vec<CatalogImage>,
    }
    let url = format!("{}/images", node_api.trim_end_matches('/'));
    let fail = |e: String| crate::ClientError::Endpoint(format!("{url}: {e}"));
    let response = reqwest::get(&url).await.map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(fail(format!("{status} {body}")));
    }
    let answer: Answer = response.json().await.map_err(|e| fail(e.to_string()))?;
    Ok(answer.images)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: u8, names: &[&str], stake: u64) -> CatalogImage {
        CatalogImage {
            id: hex::encode([id; 32]),
            names: names.iter().map(|n| n.to_string()).collect(),
            operators: 1,
            stake,
        }
    }

    #[test]
    fn a_name_resolves_to_the_image_with_the_most_stake() {
        let catalog = vec![
            image(1, &["debian (bookworm, kernel 6.1)"], 10),
            image(2, &["Debian (bookworm)"], 30),
            image(3, &["dagger-default (6.1)"], 40),
        ];
        assert_eq!(choose(&catalog, "debian"), Ok([2; 32]));
        assert_eq!(choose(&catalog, "dagger-default"), Ok([3; 32]));
        // An id is taken as it is, announced or not.
        assert_eq!(choose(&catalog, &hex::encode([9; 32])), Ok([9; 32]));
    }

    #[test]
    fn unknown_tied_and_malformed_names_are_errors() {
        let catalog = vec![image(1, &["debian"], 10), image(2, &["debian x"], 10)];
        assert!(matches!(
            choose(&catalog, "debian"),
            Err(ImageChoiceError::Ambiguous { count: 2, .. })
        ));
        let err = choose(&catalog, "ubuntu").unwrap_err();
        assert!(err.to_string().contains("known: debian, debian x"), "{err}");
        assert!(matches!(
            choose(&[], ""),
            Err(ImageChoiceError::Malformed(_))
        ));
        assert!(matches!(
            choose(&[], &"x".repeat(65)),
            Err(ImageChoiceError::Malformed(_))
        ));
        // A prefix of a name is not the name.
        assert!(choose(&catalog, "deb").is_err());
    }
}
