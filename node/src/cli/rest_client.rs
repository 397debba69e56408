//! `ensemble submit --status ID` and `--kill ID`: Spark's REST submission protocol against
//! masters' gateways (`spark://host:6066,...` or `http://host:6066`), as `spark-submit --status`
//! and `--kill` speak it: each master is asked in turn until one that is ALIVE answers.

use ensemble_actors::spark_master::rest_protocol::{to_spark_json, NOT_ALIVE_PREFIX};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The largest response read, in bytes.
const MAX_RESPONSE: u64 = 1 << 20;
/// How long to wait for a gateway to connect or answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `spark://h1:p1,h2:p2` or `http://h:p` (each entry may repeat the scheme) into `host:port`
/// entries.
pub fn gateways(master: &str) -> Result<Vec<String>, String> {
    let schemes = ["spark://", "http://"];
    let rest = schemes
        .iter()
        .find_map(|s| master.strip_prefix(s))
        .ok_or_else(|| format!("master URL {master} must start with spark:// or http://"))?;
    let mut out = Vec::new();
    for entry in rest.split(',') {
        let entry = schemes
            .iter()
            .fold(entry.trim(), |e, s| e.strip_prefix(s).unwrap_or(e))
            .trim_end_matches('/');
        let ok = entry
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !ok {
            return Err(format!("master {entry:?} in {master} is not host:port"));
        }
        out.push(entry.to_string());
    }
    Ok(out)
}

/// Prints the status of driver `id`; exit code 0 when a master knows it.
pub fn status(master: &str, id: &str) -> Result<i32, Box<dyn std::error::Error>> {
    println!("Submitting a request for the status of submission {id} in {master}.");
    let path = format!("/v1/submissions/status/{id}");
    ask(master, "GET", &path, |r| r["success"] == true)
}

/// Asks the ALIVE master to kill driver `id`; exit code 0 when the kill was submitted.
pub fn kill(master: &str, id: &str) -> Result<i32, Box<dyn std::error::Error>> {
    println!("Submitting a request to kill submission {id} in {master}.");
    let path = format!("/v1/submissions/kill/{id}");
    ask(master, "POST", &path, |r| {
        !r["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(NOT_ALIVE_PREFIX))
    })
}

/// Sends the request to each gateway in turn until one gives an answer `settles` accepts
/// (or the last answers); prints that answer as Spark's client logs it.
fn ask(
    master: &str,
    method: &str,
    path: &str,
    settles: impl Fn(&Value) -> bool,
) -> Result<i32, Box<dyn std::error::Error>> {
    let mut last = None;
    let mut failures = Vec::new();
    for addr in gateways(master)? {
        match request(&addr, method, path) {
            Ok((_, response)) => {
                let done = settles(&response);
                last = Some(response);
                if done {
                    break;
                }
            }
            Err(why) => failures.push(format!("{addr}: {why}")),
        }
    }
    let Some(response) = last else {
        return Err(format!(
            "Unable to connect to server {master} ({})",
            failures.join("; ")
        )
        .into());
    };
    let kind = response["action"]
        .as_str()
        .unwrap_or("response")
        .to_string();
    println!(
        "Server responded with {kind}:\n{}",
        to_spark_json(&response)
    );
    Ok(if response["success"] == true { 0 } else { 1 })
}

/// One HTTP/1.0 request without a body; the status and the JSON document answered.
fn request(addr: &str, method: &str, path: &str) -> Result<(u16, Value), String> {
    let target = addr
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut s = TcpStream::connect_timeout(&target, TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("the answer is not HTTP")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("the answer has no HTTP status")?;
    let json =
        serde_json::from_str(body).map_err(|e| format!("HTTP {code} without a JSON body ({e})"))?;
    Ok((code, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls_take_spark_and_http_schemes() {
        assert_eq!(
            gateways("spark://a:6066,b:6067").unwrap(),
            vec!["a:6066", "b:6067"]
        );
        assert_eq!(gateways("http://a:6066/").unwrap(), vec!["a:6066"]);
        assert!(gateways("a:6066").is_err());
        assert!(gateways("spark://a").is_err());
    }
}
