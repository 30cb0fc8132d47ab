//! What a study hands to people: the HTML report of a study directory
//! (`report.html`) and the campaign calendar it draws.

pub mod calendar;
pub mod html_report;
