//! Where the checklist is, as a step's screen asks it: is this step running, is the checklist
//! asking about it.

use crate::checklist::{Phase, Question, StepView};
use crate::ui::app::App;

/// The question the checklist waits on, when it is about this step.
pub fn question_here<'a>(app: &'a App, view: &StepView) -> Option<&'a Question> {
    let current = app.checklist.current()?;
    (app.checklist.steps.get(current)?.id == view.id)
        .then(|| app.question())
        .flatten()
}

/// Whether the executor is working on this step right now.
pub fn running_here(app: &App, view: &StepView) -> bool {
    matches!(app.checklist.phase, Phase::Running(i)
        if app.checklist.steps.get(i).is_some_and(|s| s.id == view.id))
}
