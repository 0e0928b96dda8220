//! The journey's graph is sound: names unique, every reference a step,
//! every step reachable from the first, no cycle (a contact could loop and
//! be mailed forever), and an engagement branch asks only about a send step
//! that comes before it.

use std::collections::{BTreeMap, BTreeSet};

use super::{Condition, Journey, JourneyError, StepId, StepKind, step_error};

pub(super) fn check(journey: &Journey) -> Result<(), JourneyError> {
    let mut index: BTreeMap<&StepId, usize> = BTreeMap::new();
    for (i, step) in journey.steps.iter().enumerate() {
        if index.insert(&step.id, i).is_some() {
            return Err(step_error(step.id.as_str(), "two steps have this name"));
        }
    }
    for step in &journey.steps {
        for target in step.successors() {
            if !index.contains_key(target) {
                return Err(step_error(
                    step.id.as_str(),
                    format!("leads to '{}', which is not a step", target.as_str()),
                ));
            }
        }
    }
    let successors: Vec<Vec<usize>> =
        journey.steps.iter().map(|s| s.successors().into_iter().map(|t| index[t]).collect()).collect();
    if let Some(cycle) = find_cycle(&successors) {
        return Err(JourneyError::Cycle(cycle.into_iter().map(|i| journey.steps[i].id.as_str().to_owned()).collect()));
    }
    let reached = reachable_from(0, &successors);
    if let Some(lost) = (0..journey.steps.len()).find(|i| !reached.contains(i)) {
        return Err(step_error(journey.steps[lost].id.as_str(), "no step leads here"));
    }
    for (i, step) in journey.steps.iter().enumerate() {
        let StepKind::Branch { when, .. } = &step.kind else { continue };
        let asked = match when {
            Condition::Opened(s) | Condition::Clicked(s) | Condition::NotOpenedWithin(s, _) => s,
            Condition::Event(_) | Condition::Matches(_) => continue,
        };
        let Some(&at) = index.get(asked) else {
            return Err(step_error(step.id.as_str(), format!("asks about '{}', which is not a step", asked.as_str())));
        };
        if !matches!(journey.steps[at].kind, StepKind::Send { .. }) {
            return Err(step_error(step.id.as_str(), format!("asks about '{}', which sends nothing", asked.as_str())));
        }
        if !reachable_from(at, &successors).contains(&i) || at == i {
            return Err(step_error(
                step.id.as_str(),
                format!("asks about '{}', which does not come before it", asked.as_str()),
            ));
        }
    }
    Ok(())
}

fn reachable_from(start: usize, successors: &[Vec<usize>]) -> BTreeSet<usize> {
    let mut seen = BTreeSet::from([start]);
    let mut todo = vec![start];
    while let Some(at) = todo.pop() {
        for &next in &successors[at] {
            if seen.insert(next) {
                todo.push(next);
            }
        }
    }
    seen
}

/// A cycle as the steps on it, first repeated last, if there is one.
fn find_cycle(successors: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; successors.len()];
    for root in 0..successors.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // Depth first without recursion: the path, and each step's next successor to try.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        marks[root] = Mark::OnPath;
        while let Some(&mut (at, ref mut tried)) = path.last_mut() {
            if let Some(&next) = successors[at].get(*tried) {
                *tried += 1;
                match marks[next] {
                    Mark::OnPath => {
                        let from = path.iter().position(|&(s, _)| s == next).unwrap_or(0);
                        let mut cycle: Vec<usize> = path[from..].iter().map(|&(s, _)| s).collect();
                        cycle.push(next);
                        return Some(cycle);
                    }
                    Mark::New => {
                        marks[next] = Mark::OnPath;
                        path.push((next, 0));
                    }
                    Mark::Done => {}
                }
            } else {
                marks[at] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}
