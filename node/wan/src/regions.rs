//! Round trips between cloud regions, for `--regions`.
//!
//! Source: the AWS inter-region latency matrix of the post "Latency Between
//! AWS Global Regions" (average ping round trips between EC2 instances, as
//! tabulated in "AWS Regions", A Computer Scientist Learns AWS, April 2017:
//! <https://acomputerscientistlearnsaws.blogspot.com/2017/04/aws-regions.html>).
//! Each figure is the mean of the two directions the table gives, rounded
//! to a millisecond. Routes change over the years by a few milliseconds;
//! the shape (a continent apart: 70–90 ms, an ocean: 140–330 ms) holds.

use std::time::Duration;

use crate::spec::SpecError;

/// A region of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Region(usize);

/// (name, short alias) in the order of [`RTT_MS`].
const REGIONS: [(&str, &str); 10] = [
    ("us-east-1", "us-east"),
    ("us-west-1", "us-west"),
    ("us-west-2", "us-northwest"),
    ("eu-west-1", "eu-west"),
    ("eu-central-1", "eu-central"),
    ("ap-northeast-1", "ap-northeast"),
    ("ap-northeast-2", "ap-korea"),
    ("ap-southeast-1", "ap-southeast"),
    ("ap-southeast-2", "ap-sydney"),
    ("sa-east-1", "sa-east"),
];

/// Round trips in ms; symmetric.
#[rustfmt::skip]
const RTT_MS: [[u32; 10]; 10] = [
    //  use1 usw1 usw2 euw1 euc1 apne1 apne2 apse1 apse2 sae1
    [    0,  72,  88,  81,  89, 145, 178, 217, 230, 120], // us-east-1 (N. Virginia)
    [   72,   0,  19, 153, 167, 103, 132, 174, 158, 193], // us-west-1 (N. California)
    [   88,  19,   0, 137, 160,  89, 118, 161, 162, 183], // us-west-2 (Oregon)
    [   81, 153, 137,   0,  20, 212, 242, 239, 310, 191], // eu-west-1 (Ireland)
    [   89, 167, 160,  20,   0, 237, 266, 326, 323, 195], // eu-central-1 (Frankfurt)
    [  145, 103,  89, 212, 237,   0,  31,  74, 104, 257], // ap-northeast-1 (Tokyo)
    [  178, 132, 118, 242, 266,  31,   0,  72, 134, 286], // ap-northeast-2 (Seoul)
    [  217, 174, 161, 239, 326,  74,  72,   0, 175, 328], // ap-southeast-1 (Singapore)
    [  230, 158, 162, 310, 323, 104, 134, 175,   0, 323], // ap-southeast-2 (Sydney)
    [  120, 193, 183, 191, 195, 257, 286, 328, 323,   0], // sa-east-1 (São Paulo)
];

/// Two nodes in one region (one availability zone to another).
pub const SAME_REGION_RTT: Duration = Duration::from_millis(1);

impl Region {
    pub fn name(self) -> &'static str {
        REGIONS[self.0].0
    }
}

impl std::str::FromStr for Region {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Region, SpecError> {
        let t = text.trim().to_ascii_lowercase();
        REGIONS
            .iter()
            .position(|(name, alias)| *name == t || *alias == t)
            .map(Region)
            .ok_or_else(|| SpecError::Region(text.to_string()))
    }
}

/// Every region's name, with its alias.
pub fn names() -> Vec<String> {
    REGIONS
        .iter()
        .map(|(name, alias)| format!("{name} ({alias})"))
        .collect()
}

/// The round trip between two regions.
pub fn rtt(a: Region, b: Region) -> Duration {
    if a == b {
        SAME_REGION_RTT
    } else {
        Duration::from_millis(u64::from(RTT_MS[a.0][b.0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_symmetric_and_names_resolve() {
        for (a, row) in RTT_MS.iter().enumerate() {
            assert_eq!(row[a], 0);
            for (b, &ms) in row.iter().enumerate() {
                assert_eq!(ms, RTT_MS[b][a], "{a} {b}");
                assert!(a == b || (15..400).contains(&ms), "{a} {b}: {ms}");
            }
        }
        let east: Region = "us-east".parse().unwrap();
        let dublin: Region = "EU-WEST-1".parse().unwrap();
        assert_eq!(rtt(east, dublin), Duration::from_millis(81));
        assert_eq!(rtt(east, east), SAME_REGION_RTT);
        let err = "mars-north-1".parse::<Region>().unwrap_err().to_string();
        assert!(err.contains("us-east-1 (us-east)"), "{err}");
    }
}
