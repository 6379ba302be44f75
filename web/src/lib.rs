//! bty-web
