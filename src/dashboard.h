/*
 * dashboard: the self-contained page served at / (no external assets). Its
 * source is src/dashboard.html; the build turns it into this C string.
 */
#ifndef SLOTD_DASHBOARD_H
#define SLOTD_DASHBOARD_H

extern const char dashboard_html[];

#endif
