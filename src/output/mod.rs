//! What a study hands to people: the HTML report of a study directory
//! (`report.html`), the campaign calendar it draws, and the social network's
//! summary (`network.json`, `degree.svg`).

pub mod calendar;
pub mod html_report;
pub mod network;
