//! Each command as a thin call into the SDK, producing one report that is
//! printed as text or as a single JSON object.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use dagger_client::{
    evidence::Evidence, pda, ActiveLease, Capacity, Config, DaggerClient, Operator, OperatorFilter,
    OperatorStatus, PriceFloor, Request, RequestFilter, RequestStatus, SlashOutcome,
    UpdateOperatorArgs, VmSpec, WaitProgress, WatchMethod, PROGRAM_ID,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use solana_sdk::{pubkey::Pubkey, signature::Signature, signer::Signer};

use crate::{
    args::{
        CapacityArgs, Command, ConfigCommand, OperatorCommand, OperatorStatusArg, OperatorsCommand,
        PriceFloorArgs, RequestStatusArg, RequestsCommand, VmCommand, WaitArgs,
    },
    context::{hex, node_keypair, pubkey_or_keypair, read_ssh_key, sol, Context},
};

/// What a command prints: the same facts for people and for programs.
pub struct Report {
    pub json: Value,
    pub text: String,
}

impl Report {
    fn new(json: Value, text: impl Into<String>) -> Report {
        Report {
            json,
            text: text.into(),
        }
    }
}

pub async fn run(ctx: &Context, command: Command) -> Result<Report> {
    match command {
        Command::Config(ConfigCommand::Show) => config_show(ctx).await,
        Command::Operators(OperatorsCommand::List { status, owner }) => {
            operators_list(ctx, status, owner).await
        }
        Command::Operator(command) => operator(ctx, command).await,
        Command::Vm(command) => vm(ctx, command).await,
        Command::Requests(RequestsCommand::List { customer, status }) => {
            requests_list(ctx, customer, status).await
        }
        Command::Slash { evidence } => slash(ctx, &evidence).await,
        Command::Completions { .. } => unreachable!("handled before any connection"),
    }
}

/// Reads one evidence object or an array of them.
fn read_evidence(path: &std::path::Path) -> Result<Vec<Evidence>> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the evidence from stdin")?
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the evidence file {}", path.display()))?
    };
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let list = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    if list.is_empty() {
        bail!("{} holds no evidence (an empty list)", path.display());
    }
    list.into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value(item).with_context(|| {
                format!(
                    "evidence #{i} in {} is not of the form {{\"first\": {{\"header\": HEX, \
                     \"signature\": HEX}}, \"second\": {{...}}}}",
                    path.display()
                )
            })
        })
        .collect()
}

async fn slash(ctx: &Context, path: &std::path::Path) -> Result<Report> {
    let pieces = read_evidence(path)?;
    let client = ctx.client()?;
    let mut results = Vec::new();
    let mut lines = Vec::new();
    for (i, evidence) in pieces.iter().enumerate() {
        let spinner = spinner(format!("Reporting evidence #{i}"));
        let outcome = client.report_equivocation(evidence).await;
        spinner.finish_and_clear();
        let outcome = outcome.with_context(|| format!("evidence #{i}"))?;
        let hash = hex(&evidence.hash());
        let (json, line) = match outcome {
            SlashOutcome::Slashed {
                signature,
                slashed,
                reporter_reward,
            } => (
                json!({
                    "evidence": hash,
                    "outcome": "slashed",
                    "signature": signature.to_string(),
                    "slashed_lamports": slashed,
                    "reporter_reward_lamports": reporter_reward,
                }),
                format!(
                    "#{i}: slashed {} SOL; {} SOL paid to you (signature {signature})",
                    sol(slashed),
                    sol(reporter_reward)
                ),
            ),
            SlashOutcome::AlreadyReported => (
                json!({ "evidence": hash, "outcome": "already_reported" }),
                format!("#{i}: this pair was already reported; nothing to do"),
            ),
            SlashOutcome::AlreadySlashed => (
                json!({ "evidence": hash, "outcome": "already_slashed" }),
                format!("#{i}: the operator was already slashed for another pair; nothing to do"),
            ),
        };
        results.push(json);
        lines.push(line);
    }
    Ok(Report::new(json!({ "reports": results }), lines.join("\n")))
}

async fn config_show(ctx: &Context) -> Result<Report> {
    let client = ctx.reader()?;
    let config = client.reader().config().await?;
    let json = config_json(&config);
    let text = format!(
        "Program:                {PROGRAM_ID}\n\
         Cluster:                {}\n\
         Config account:         {}\n\
         Admin:                  {}\n\
         Treasury:               {}\n\
         Minimum operator stake: {} SOL\n\
         Unbonding period:       {} s\n\
         Provisioning timeout:   {} s\n\
         Protocol fee:           {} bps\n\
         Stake cap per operator: {} bps of the active stake\n\
         Slash on removal:       {} bps\n\
         Slash on equivocation:  {} bps ({} bps of it to the reporter)\n\
         Network id:             {}\n\
         Roster epoch:           {}\n\
         Active operators:       {} ({} SOL staked)\n\
         Bootstrapped:           {}",
        ctx.rpc_url(),
        pda::config().0,
        config.admin,
        config.treasury,
        sol(config.min_operator_stake),
        config.unbonding_period,
        config.provisioning_timeout,
        config.protocol_fee_bps,
        config.max_stake_share_bps,
        config.removal_slash_bps,
        config.equivocation_slash_bps,
        config.reporter_reward_bps,
        if config.bootstrapped {
            hex(&config.network_id)
        } else {
            "(set when the bootstrap finishes)".into()
        },
        config.roster_epoch,
        config.active_operators,
        sol(config.total_active_stake),
        config.bootstrapped,
    );
    Ok(Report::new(json, text))
}

async fn operators_list(
    ctx: &Context,
    status: Option<OperatorStatusArg>,
    owner: Option<String>,
) -> Result<Report> {
    let owner = owner.map(|o| ctx.pubkey_or_me(&o)).transpose()?;
    let client = ctx.reader()?;
    let operators = client
        .reader()
        .operators(OperatorFilter {
            status: status.map(operator_status),
            owner,
        })
        .await?;
    let json = json!({
        "count": operators.len(),
        "operators": operators.iter().map(|(a, o)| operator_json(a, o)).collect::<Vec<_>>(),
    });
    let mut text = format!(
        "{:<44}  {:<9}  {:>12}  {:<21}  capacity (vCPU/MiB/GiB/region)\n",
        "node key", "status", "stake (SOL)", "address"
    );
    for (_, operator) in &operators {
        text.push_str(&format!(
            "{:<44}  {:<9}  {:>12}  {:<21}  {}/{}/{}/{}\n",
            operator.node_key,
            operator_status_name(operator.status),
            sol(operator.stake),
            operator.address,
            operator.capacity.vcpus,
            operator.capacity.memory_mib,
            operator.capacity.disk_gib,
            operator.capacity.region,
        ));
    }
    text.push_str(&format!("{} operator(s)", operators.len()));
    Ok(Report::new(json, text))
}

async fn requests_list(
    ctx: &Context,
    customer: Option<String>,
    status: Option<RequestStatusArg>,
) -> Result<Report> {
    let customer = customer.map(|c| ctx.pubkey_or_me(&c)).transpose()?;
    let client = ctx.reader()?;
    let requests = client
        .reader()
        .requests(RequestFilter {
            customer,
            status: status.map(request_status),
        })
        .await?;
    let json = json!({
        "count": requests.len(),
        "requests": requests.iter().map(|(a, r)| request_json(a, r)).collect::<Vec<_>>(),
    });
    let mut text = format!(
        "{:<44}  {:<10}  {:<44}  {:>14}  {:>10}\n",
        "request", "status", "customer", "deposit (SOL)", "duration"
    );
    for (address, request) in &requests {
        text.push_str(&format!(
            "{:<44}  {:<10}  {:<44}  {:>14}  {:>9}s\n",
            address,
            request_status_name(request.status),
            request.customer,
            sol(request.deposit),
            request.duration,
        ));
    }
    text.push_str(&format!("{} request(s)", requests.len()));
    Ok(Report::new(json, text))
}

async fn operator(ctx: &Context, command: OperatorCommand) -> Result<Report> {
    match command {
        OperatorCommand::Register {
            node_keypair: path,
            address,
            capacity,
            stake,
            price_floor,
        } => {
            let node = node_keypair(&path)?;
            let capacity = full_capacity(&capacity)?;
            let floor = merge_price_floor(PriceFloor::default(), &price_floor);
            let client = ctx.client()?;
            let signature = client
                .operator()
                .register(&node, address, capacity, stake, floor)
                .await?;
            let node_key = node.pubkey();
            Ok(signed(
                signature,
                json!({
                    "operator": pda::operator(&node_key).0.to_string(),
                    "node_key": node_key.to_string(),
                    "owner": client.wallet().to_string(),
                    "stake_lamports": stake,
                    "status": "pending",
                }),
                format!(
                    "Registered node {node_key} with {} SOL (operator account {}).\n\
                     It is pending until the admin or a quorum of operators admits it.",
                    sol(stake),
                    pda::operator(&node_key).0
                ),
            ))
        }
        OperatorCommand::AddStake { node, amount } => {
            let node = pubkey_or_keypair(&node.node)?;
            let signature = ctx.client()?.operator().add_stake(&node, amount).await?;
            Ok(signed(
                signature,
                json!({ "node_key": node.to_string(), "added_lamports": amount }),
                format!("Added {} SOL of stake to {node}.", sol(amount)),
            ))
        }
        OperatorCommand::Unstake { node } => {
            let node = pubkey_or_keypair(&node.node)?;
            let client = ctx.client()?;
            let signature = client.operator().request_unstake(&node).await?;
            let operator = client.reader().operator(&node).await?;
            Ok(signed(
                signature,
                json!({
                    "node_key": node.to_string(),
                    "status": "unbonding",
                    "withdrawable_at": operator.withdrawable_at,
                }),
                format!(
                    "{node} left the roster. Its stake can be withdrawn from unix time {}.",
                    operator.withdrawable_at
                ),
            ))
        }
        OperatorCommand::Withdraw { node } => {
            let node = pubkey_or_keypair(&node.node)?;
            let signature = ctx.client()?.operator().withdraw_stake(&node).await?;
            Ok(signed(
                signature,
                json!({ "node_key": node.to_string(), "status": "exited" }),
                format!("Withdrew the stake of {node}."),
            ))
        }
        OperatorCommand::WithdrawEarnings { node } => {
            let node = pubkey_or_keypair(&node.node)?;
            let client = ctx.client()?;
            let amount = client.reader().operator(&node).await?.earnings;
            let signature = client.operator().withdraw_earnings(&node).await?;
            Ok(signed(
                signature,
                json!({ "node_key": node.to_string(), "withdrawn_lamports": amount }),
                format!("Withdrew {} SOL of earnings of {node}.", sol(amount)),
            ))
        }
        OperatorCommand::Close { node } => {
            let node = pubkey_or_keypair(&node.node)?;
            let signature = ctx.client()?.operator().close(&node).await?;
            Ok(signed(
                signature,
                json!({ "node_key": node.to_string(), "closed": true }),
                format!("Closed the operator account of {node}."),
            ))
        }
        OperatorCommand::Update {
            node,
            address,
            capacity,
            price_floor,
        } => {
            let node = pubkey_or_keypair(&node.node)?;
            let client = ctx.client()?;
            let current = client.reader().operator(&node).await?;
            let capacity =
                capacity_given(&capacity).then(|| merge_capacity(current.capacity, &capacity));
            let floor_given = price_floor.per_vcpu.is_some()
                || price_floor.per_memory_gib.is_some()
                || price_floor.per_disk_gib.is_some();
            let price_floor =
                floor_given.then(|| merge_price_floor(current.price_floor, &price_floor));
            let signature = client
                .operator()
                .update(
                    &node,
                    UpdateOperatorArgs {
                        address: address.clone(),
                        capacity,
                        price_floor,
                    },
                )
                .await?;
            let operator = client.reader().operator(&node).await?;
            Ok(signed(
                signature,
                json!({ "operator": operator_json(&pda::operator(&node).0, &operator) }),
                format!(
                    "Updated {node}: address {}, capacity {}/{}/{}/{}.",
                    operator.address,
                    operator.capacity.vcpus,
                    operator.capacity.memory_mib,
                    operator.capacity.disk_gib,
                    operator.capacity.region
                ),
            ))
        }
        OperatorCommand::Claim { node, request } => {
            let node = pubkey_or_keypair(&node.node)?;
            let client = ctx.client()?;
            let before = client.rpc().get_balance(&client.wallet()).await?;
            let signature = client.operator().claim(&node, &request).await?;
            let after = client.rpc().get_balance(&client.wallet()).await?;
            let settled = client
                .reader()
                .fetch::<Request>("request", &request)
                .await?;
            Ok(signed(
                signature,
                json!({
                    "request": request.to_string(),
                    "balance_change_lamports": after as i128 - before as i128,
                    "lease_settled": settled.is_none(),
                }),
                format!(
                    "Claimed lease {request}: wallet balance {} lamports{}.",
                    signed_lamports(after as i128 - before as i128),
                    if settled.is_none() {
                        " (the lease is over and was settled)"
                    } else {
                        ""
                    }
                ),
            ))
        }
        OperatorCommand::Show { node } => {
            let node = pubkey_or_keypair(&node.node)?;
            let client = ctx.reader()?;
            let address = pda::operator(&node).0;
            let operator = client.reader().operator(&node).await?;
            let leases = client.reader().leases(Some(&address)).await?;
            let mut json = operator_json(&address, &operator);
            json["leases"] = leases
                .iter()
                .map(|(a, _)| Value::from(a.to_string()))
                .collect();
            let text = format!(
                "Operator account: {address}\n\
                 Node key:         {}\n\
                 Owner:            {}\n\
                 Status:           {}\n\
                 Stake:            {} SOL\n\
                 Address:          {}\n\
                 Capacity:         {} vCPU, {} MiB, {} GiB, region {}\n\
                 Votes cast:       {}\n\
                 Removals:         {}\n\
                 Leases:           {}",
                operator.node_key,
                operator.owner,
                operator_status_name(operator.status),
                sol(operator.stake),
                operator.address,
                operator.capacity.vcpus,
                operator.capacity.memory_mib,
                operator.capacity.disk_gib,
                operator.capacity.region,
                operator.votes_cast,
                operator.removals,
                leases.len(),
            );
            Ok(Report::new(json, text))
        }
    }
}

/// `--image`: an id as it is, a name through a node's announced catalog.
async fn resolve_image(ctx: &Context, wanted: &str) -> Result<[u8; 32]> {
    use dagger_client::images::{choose, fetch_catalog, ImageChoiceError};
    match choose(&[], wanted) {
        Ok(id) => return Ok(id),
        Err(ImageChoiceError::Malformed(_)) => {
            anyhow::bail!(
                "--image `{wanted}` is neither an image id (64 hex characters) nor a name"
            )
        }
        Err(_) => {}
    }
    let api = ctx
        .node_api()
        .context("--image names an image: a node's catalog resolves it")?;
    let catalog = fetch_catalog(&api).await?;
    Ok(choose(&catalog, wanted)?)
}

async fn vm(ctx: &Context, command: VmCommand) -> Result<Report> {
    match command {
        VmCommand::Quote {
            vcpus,
            memory_mib,
            disk_gib,
            region,
        } => {
            let spec = VmSpec {
                vcpus,
                memory_mib,
                disk_gib,
                region,
                image_id: [0; 32],
                ssh_key: [0; 32],
            };
            let quotes = ctx.client()?.reader().quote(&spec).await?;
            let json = json!({
                "quotes": quotes
                    .iter()
                    .map(|(operator, price)| json!({
                        "operator": operator.to_string(),
                        "price_per_second": price.to_string(),
                    }))
                    .collect::<Vec<_>>(),
                "cheapest_price_per_second": quotes.first().map(|(_, p)| p.to_string()),
            });
            let mut text = String::new();
            for (operator, price) in &quotes {
                text.push_str(&format!("{operator}  {price} lamports/s\n"));
            }
            match quotes.first() {
                Some((_, price)) => text.push_str(&format!(
                    "{} operator(s) can host it; offer at least {price} lamports per second.",
                    quotes.len()
                )),
                None => text.push_str("No active operator can host a VM like this."),
            }
            Ok(Report::new(json, text))
        }
        VmCommand::Request {
            vcpus,
            memory_mib,
            disk_gib,
            region,
            image,
            ssh_key,
            price,
            duration,
            wait,
        } => {
            let image = resolve_image(ctx, &image).await?;
            let spec = VmSpec {
                vcpus,
                memory_mib,
                disk_gib,
                region,
                image_id: image,
                ssh_key: read_ssh_key(&ssh_key)?,
            };
            let duration = duration.as_secs();
            let timeout = wait.wait.then_some(wait.timeout);
            let client = ctx.client()?;
            let started = Instant::now();
            let created = client
                .customer()
                .create_request(spec, price, duration)
                .await?;
            let paid_in = started.elapsed();
            let mut json = json!({
                "request": created.request.to_string(),
                "request_id": created.request_id,
                "deposit_lamports": created.deposit,
                "signature": created.signature.to_string(),
                "status": "open",
                "image_id": hex(&image),
                "timings": { "paid_ms": paid_in.as_millis() as u64 },
            });
            let mut text = format!(
                "Requested VM {} (id {}, image {}): {} SOL in escrow for {duration} s.\n\
                 Paid in {:.1}s, signature {}.",
                created.request,
                created.request_id,
                hex(&image),
                sol(created.deposit),
                paid_in.as_secs_f64(),
                created.signature
            );
            if let Some(timeout) = timeout {
                // The deposit is paid either way: say which request it is.
                let lease = wait_active(&client, &created.request, timeout)
                    .await
                    .with_context(|| {
                        format!(
                            "request {} was paid (signature {}) but is not active",
                            created.request, created.signature
                        )
                    })?;
                let total = started.elapsed();
                json["status"] = "active".into();
                json["timings"]["active_ms"] = (total.as_millis() as u64).into();
                json["timings"]["watch_method"] = method_name(lease.method).into();
                json["lease"] = request_json(&created.request, &lease.request);
                text.push_str(&format!(
                    "\nActive after {:.1}s (waited {:.1}s, watching via {}); operator {}.",
                    total.as_secs_f64(),
                    lease.waited.as_secs_f64(),
                    method_name(lease.method),
                    lease.request.assigned_operator
                ));
            } else {
                text.push_str(&format!(
                    "\nWatch it with `dagger vm status {} --wait`.",
                    created.request
                ));
            }
            Ok(Report::new(json, text))
        }
        VmCommand::TopUp { request, duration } => {
            let seconds = duration.as_secs();
            let client = ctx.client()?;
            let signature = client.customer().top_up(&request, seconds).await?;
            let current = client.reader().request(&request).await?;
            Ok(signed(
                signature,
                json!({ "request": request_json(&request, &current), "added_seconds": seconds }),
                format!(
                    "Added {seconds} s to {request}: {} s paid in total, {} SOL deposited.",
                    current.duration,
                    sol(current.deposit)
                ),
            ))
        }
        VmCommand::Cancel { request } => {
            let signature = ctx.client()?.customer().cancel(&request).await?;
            Ok(signed(
                signature,
                json!({ "request": request.to_string(), "refunded": true }),
                format!("Cancelled {request}; the deposit was refunded."),
            ))
        }
        VmCommand::Reclaim { request } => {
            let signature = ctx.client()?.customer().reclaim(&request).await?;
            Ok(signed(
                signature,
                json!({ "request": request.to_string(), "refunded": true }),
                format!("Reclaimed expired request {request}; its customer was refunded."),
            ))
        }
        VmCommand::Close { request } => {
            let signature = ctx.client()?.customer().close_lease(&request).await?;
            Ok(signed(
                signature,
                json!({ "request": request.to_string(), "closed": true }),
                format!(
                    "Closed lease {request}: the operator was paid what accrued, the rest \
                     was refunded."
                ),
            ))
        }
        VmCommand::Status { request, wait } => status(ctx, &request, &wait).await,
        VmCommand::Ssh {
            request,
            identity,
            command,
        } => ssh(ctx, &request, &identity, &command).await,
    }
}

/// Runs the system `ssh` against the lease's VM, with the endpoint checked
/// against the chain first and its attested host key pinned: `ssh` reads
/// only a known-hosts file written for this lease (no trust on first use,
/// no other file consulted), and every value from the endpoint comes after
/// an option or after `--`, never where `ssh` would take it for an option.
async fn ssh(
    ctx: &Context,
    request: &Pubkey,
    identity: &str,
    command: &[String],
) -> Result<Report> {
    let client = ctx.reader()?;
    let current = client.reader().request(request).await?;
    let endpoint = dagger_client::endpoint::fetch(&ctx.node_api()?, request, &current).await?;
    let key = dagger_cli::expand_tilde(identity);
    if !key.exists() {
        bail!(
            "no private key at {} (pass -i with the key whose public half you gave to `vm request`)",
            key.display()
        );
    }
    let Some(pin) = endpoint.known_hosts_line() else {
        bail!(
            "the attested endpoint {} pins no SSH host key: refusing to trust whatever answers \
             there",
            endpoint.url
        );
    };
    let known_hosts = known_hosts_file(request, &pin)?;
    let status = std::process::Command::new("ssh")
        .args(["-o", "StrictHostKeyChecking=yes", "-o"])
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "CheckHostIP=no"])
        .arg("-i")
        .arg(&key)
        .args(["-p", &endpoint.port.to_string()])
        .args(["-l", &endpoint.user])
        .arg("--")
        .arg(&endpoint.host)
        .args(command)
        .status()
        .context("cannot run `ssh` (install the OpenSSH client)")?;
    if !status.success() {
        bail!("ssh exited with {status}");
    }
    Ok(Report::new(
        json!({ "request": request.to_string(), "endpoint": endpoint.url }),
        String::new(),
    ))
}

/// A known-hosts file holding only `line`, for the lease `request`
/// (`$XDG_CONFIG_HOME/dagger/known_hosts/<request>`, else under
/// `~/.config`, else the temporary directory).
fn known_hosts_file(request: &Pubkey, line: &str) -> Result<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("dagger").join("known_hosts");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(request.to_string());
    std::fs::write(&path, format!("{line}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

async fn status(ctx: &Context, request: &Pubkey, wait: &WaitArgs) -> Result<Report> {
    let client = ctx.reader()?;
    let started = Instant::now();
    let (current, method) = if wait.wait {
        let timeout = wait.timeout;
        let lease = wait_active(&client, request, timeout).await?;
        (lease.request, Some(lease.method))
    } else {
        (client.reader().request(request).await?, None)
    };
    let now = client.reader().cluster_time().await?;
    let mut json = request_json(request, &current);
    json["cluster_time"] = now.into();
    json["claimable_lamports"] = current.claimable(now).into();
    if let Some(method) = method {
        json["timings"] = json!({
            "waited_ms": started.elapsed().as_millis() as u64,
            "watch_method": method_name(method),
        });
    }
    let mut text = format!(
        "Request:    {request}\n\
         Status:     {}\n\
         Customer:   {}\n\
         Spec:       {} vCPU, {} MiB, {} GiB, region {}, image {}\n\
         Price:      {} lamports/s for {} s\n\
         Deposit:    {} SOL ({} SOL paid out)",
        request_status_name(current.status),
        current.customer,
        current.spec.vcpus,
        current.spec.memory_mib,
        current.spec.disk_gib,
        current.spec.region,
        hex(&current.spec.image_id),
        current.price_per_second,
        current.duration,
        sol(current.deposit),
        sol(current.paid_out),
    );
    match current.status {
        RequestStatus::Open => text.push_str(&format!(
            "\nDeadline:   in {} s (unix time {})",
            current.deadline - now,
            current.deadline
        )),
        RequestStatus::Active | RequestStatus::Terminated => text.push_str(&format!(
            "\nOperator:   {}\nStarted:    {}\nAccrued:    {} SOL",
            current.assigned_operator,
            current.lease_start,
            sol(current.accrued(now))
        )),
    }
    if current.status == RequestStatus::Active {
        // Where the VM is, if a node can say (checked against the chain).
        if let Ok(api) = ctx.node_api() {
            match dagger_client::endpoint::fetch(&api, request, &current).await {
                Ok(endpoint) => {
                    json["endpoint"] = endpoint.url.clone().into();
                    text.push_str(&format!(
                        "\nEndpoint:   {} (attested on-chain; `dagger vm ssh {request}`)",
                        endpoint.url
                    ));
                }
                Err(err) => text.push_str(&format!("\nEndpoint:   unknown ({err})")),
            }
        }
    }
    if let Some(method) = method {
        text.push_str(&format!(
            "\nActive after waiting {:.1}s (watching via {}).",
            started.elapsed().as_secs_f64(),
            method_name(method)
        ));
    }
    Ok(Report::new(json, text))
}

/// Waits with a spinner on stderr (drawn only on a terminal, so JSON on
/// stdout stays clean).
async fn wait_active(
    client: &DaggerClient,
    request: &Pubkey,
    timeout: Duration,
) -> Result<ActiveLease> {
    let spinner = spinner("waiting for the operators to provision the VM".into());
    let result = client
        .customer()
        .wait_until_active(request, timeout, |progress: WaitProgress| {
            spinner.set_message(format!(
                "request {}; {} s to the provisioning deadline (watching via {})",
                request_status_name(progress.status),
                progress.seconds_to_deadline,
                method_name(progress.method)
            ))
        })
        .await;
    spinner.finish_and_clear();
    Ok(result?)
}

/// A spinner on stderr (drawn only on a terminal, so JSON on stdout stays
/// clean).
pub fn spinner(message: String) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {msg}") {
        spinner.set_style(style);
    }
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner.set_message(message);
    spinner
}

fn signed(signature: Signature, mut json: Value, text: String) -> Report {
    json["signature"] = signature.to_string().into();
    Report::new(json, format!("{text}\nSignature: {signature}"))
}

fn signed_lamports(delta: i128) -> String {
    if delta >= 0 {
        format!("+{delta}")
    } else {
        delta.to_string()
    }
}

fn merge_price_floor(current: PriceFloor, args: &PriceFloorArgs) -> PriceFloor {
    PriceFloor {
        per_vcpu: args.per_vcpu.unwrap_or(current.per_vcpu),
        per_memory_gib: args.per_memory_gib.unwrap_or(current.per_memory_gib),
        per_disk_gib: args.per_disk_gib.unwrap_or(current.per_disk_gib),
    }
}

fn capacity_given(args: &CapacityArgs) -> bool {
    args.vcpus.is_some()
        || args.memory_mib.is_some()
        || args.disk_gib.is_some()
        || args.region.is_some()
}

fn merge_capacity(current: Capacity, args: &CapacityArgs) -> Capacity {
    Capacity {
        vcpus: args.vcpus.unwrap_or(current.vcpus),
        memory_mib: args.memory_mib.unwrap_or(current.memory_mib),
        disk_gib: args.disk_gib.unwrap_or(current.disk_gib),
        region: args.region.unwrap_or(current.region),
    }
}

/// Registration needs every capacity figure.
fn full_capacity(args: &CapacityArgs) -> Result<Capacity> {
    match (args.vcpus, args.memory_mib, args.disk_gib) {
        (Some(vcpus), Some(memory_mib), Some(disk_gib)) => Ok(Capacity {
            vcpus,
            memory_mib,
            disk_gib,
            region: args.region.unwrap_or(0),
        }),
        _ => bail!("registration needs --vcpus, --memory-mib and --disk-gib"),
    }
}

fn operator_status(arg: OperatorStatusArg) -> OperatorStatus {
    match arg {
        OperatorStatusArg::Pending => OperatorStatus::Pending,
        OperatorStatusArg::Active => OperatorStatus::Active,
        OperatorStatusArg::Unbonding => OperatorStatus::Unbonding,
        OperatorStatusArg::Exited => OperatorStatus::Exited,
    }
}

fn request_status(arg: RequestStatusArg) -> RequestStatus {
    match arg {
        RequestStatusArg::Open => RequestStatus::Open,
        RequestStatusArg::Active => RequestStatus::Active,
        RequestStatusArg::Terminated => RequestStatus::Terminated,
    }
}

fn operator_status_name(status: OperatorStatus) -> &'static str {
    match status {
        OperatorStatus::Pending => "pending",
        OperatorStatus::Active => "active",
        OperatorStatus::Unbonding => "unbonding",
        OperatorStatus::Exited => "exited",
    }
}

fn request_status_name(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Open => "open",
        RequestStatus::Active => "active",
        RequestStatus::Terminated => "terminated",
    }
}

fn method_name(method: WatchMethod) -> &'static str {
    match method {
        WatchMethod::Websocket => "websocket",
        WatchMethod::Polling => "polling",
    }
}

fn config_json(config: &Config) -> Value {
    json!({
        "program_id": PROGRAM_ID.to_string(),
        "address": pda::config().0.to_string(),
        "admin": config.admin.to_string(),
        "treasury": config.treasury.to_string(),
        "min_operator_stake_lamports": config.min_operator_stake,
        "unbonding_period_seconds": config.unbonding_period,
        "provisioning_timeout_seconds": config.provisioning_timeout,
        "protocol_fee_bps": config.protocol_fee_bps,
        "max_stake_share_bps": config.max_stake_share_bps,
        "removal_slash_bps": config.removal_slash_bps,
        "equivocation_slash_bps": config.equivocation_slash_bps,
        "reporter_reward_bps": config.reporter_reward_bps,
        "network_id": config.bootstrapped.then(|| hex(&config.network_id)),
        "pending_admin": (config.pending_admin != Pubkey::default())
            .then(|| config.pending_admin.to_string()),
        "roster_epoch": config.roster_epoch,
        "total_active_stake_lamports": config.total_active_stake,
        "active_operators": config.active_operators,
        "bootstrapped": config.bootstrapped,
    })
}

fn operator_json(address: &Pubkey, operator: &Operator) -> Value {
    json!({
        "address": address.to_string(),
        "owner": operator.owner.to_string(),
        "node_key": operator.node_key.to_string(),
        "network_address": operator.address,
        "capacity": {
            "vcpus": operator.capacity.vcpus,
            "memory_mib": operator.capacity.memory_mib,
            "disk_gib": operator.capacity.disk_gib,
            "region": operator.capacity.region,
        },
        "stake_lamports": operator.stake,
        "status": operator_status_name(operator.status),
        "registered_at": operator.registered_at,
        "withdrawable_at": operator.withdrawable_at,
        "removals": operator.removals,
        "slashed_lamports": operator.slashed,
        "votes_cast": operator.votes_cast,
        "earnings_lamports": operator.earnings,
        "active_leases": operator.active_leases,
        "price_floor": {
            "per_vcpu": operator.price_floor.per_vcpu,
            "per_memory_gib": operator.price_floor.per_memory_gib,
            "per_disk_gib": operator.price_floor.per_disk_gib,
        },
    })
}

fn request_json(address: &Pubkey, request: &Request) -> Value {
    let assigned =
        (request.status != RequestStatus::Open).then(|| request.assigned_operator.to_string());
    json!({
        "address": address.to_string(),
        "customer": request.customer.to_string(),
        "request_id": request.request_id,
        "status": request_status_name(request.status),
        "spec": {
            "vcpus": request.spec.vcpus,
            "memory_mib": request.spec.memory_mib,
            "disk_gib": request.spec.disk_gib,
            "region": request.spec.region,
            "image_id": hex(&request.spec.image_id),
        },
        "price_per_second_lamports": request.price_per_second,
        "duration_seconds": request.duration,
        "deposit_lamports": request.deposit,
        "paid_out_lamports": request.paid_out,
        "created_at": request.created_at,
        "deadline": request.deadline,
        "assigned_operator": assigned,
        "endpoint_hash": (request.status != RequestStatus::Open).then(|| hex(&request.endpoint_hash)),
        "lease_start": request.lease_start,
        "ended_at": request.ended_at,
    })
}
