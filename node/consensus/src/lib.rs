//! Sans-IO hashgraph consensus (work in progress by the consensus helper).
