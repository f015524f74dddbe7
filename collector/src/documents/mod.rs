//! Documents people sign: the administrative layout of Nghị định 30/2020/NĐ-CP ([`nd30`], DOCX,
//! HTML and text from one [`nd30::Document`]) and what is written in it ([`incident`]: the
//! initial and closing incident reports of Thông tư 20/2017/TT-BTTTT). The consolidated
//! provincial report (`consolidate::docx`) uses the same layout. Notices to leadership are written
//! by [`notice`] (e-mail and webhooks) and [`short_notice`] (the short texts of Zalo and SMS).

pub mod consolidate;
pub mod incident;
pub mod issue;
pub mod nd30;
pub mod notice;
pub mod periodic;
pub mod short_notice;
