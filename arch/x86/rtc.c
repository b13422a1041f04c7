/*
 * CMOS RTC reads: wait out an update in progress, read every field twice
 * until two reads agree (an update between them would tear the date), and
 * decode BCD or binary, 12 or 24 hour, as status register B says.
 */
#include "arch/x86/rtc.h"

#include "arch/x86/cpu.h" // inb, outb, interrupts_save

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define NMI_DISABLE 0x80 /* kept set while we select registers */

enum { SECONDS = 0x00, MINUTES = 0x02, HOURS = 0x04, DAY = 0x07, MONTH = 0x08, YEAR = 0x09,
       STATUS_A = 0x0a, STATUS_B = 0x0b, CENTURY = 0x32 };

#define STATUS_A_UPDATING 0x80
#define STATUS_B_24_HOUR 0x02
#define STATUS_B_BINARY 0x04
#define HOUR_PM 0x80

static uint8_t cmos_read(uint8_t reg)
{
    outb(CMOS_INDEX, NMI_DISABLE | reg);
    return inb(CMOS_DATA);
}

struct rtc_fields {
    uint8_t second, minute, hour, day, month, year, century;
};

static void read_fields(struct rtc_fields *f)
{
    /* an update takes under 2 ms and starts 244 us after UIP rises: a
     * bounded wait for it to fall leaves time for one whole read */
    for (unsigned i = 0; i < 100000 && (cmos_read(STATUS_A) & STATUS_A_UPDATING); i++)
        cpu_relax();
    *f = (struct rtc_fields){ cmos_read(SECONDS), cmos_read(MINUTES), cmos_read(HOURS), cmos_read(DAY),
                              cmos_read(MONTH), cmos_read(YEAR), cmos_read(CENTURY) };
}

static unsigned from_bcd(uint8_t value)
{
    return (value >> 4) * 10u + (value & 0x0f);
}

int64_t rtc_days_from_civil(int64_t year, unsigned month, unsigned day)
{
    /* eras of 400 years (146097 days) with March as the first month, so
     * the leap day ends the year */
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

int64_t rtc_read_seconds(void)
{
    struct rtc_fields a, b;
    uint64_t flags = interrupts_save(); /* the index/data pair is one register */

    read_fields(&a);
    for (unsigned tries = 0; tries < 8; tries++) {
        read_fields(&b);
        if (a.second == b.second && a.minute == b.minute && a.hour == b.hour && a.day == b.day &&
            a.month == b.month && a.year == b.year && a.century == b.century)
            break;
        a = b;
    }
    uint8_t status_b = cmos_read(STATUS_B);
    interrupts_restore(flags);

    int pm = (b.hour & HOUR_PM) != 0;
    b.hour &= (uint8_t)~HOUR_PM;
    unsigned second = b.second, minute = b.minute, hour = b.hour, day = b.day, month = b.month;
    unsigned year = b.year, century = b.century;
    if (!(status_b & STATUS_B_BINARY)) {
        second = from_bcd(b.second);
        minute = from_bcd(b.minute);
        hour = from_bcd(b.hour);
        day = from_bcd(b.day);
        month = from_bcd(b.month);
        year = from_bcd(b.year);
        century = from_bcd(b.century);
    }
    if (!(status_b & STATUS_B_24_HOUR)) /* 12-hour: 12 AM is 0, 12 PM is 12 */
        hour = hour % 12 + (pm ? 12 : 0);
    if (century < 19 || century > 29)
        century = 20; /* no century register: the 2000s */
    if (second > 59 || minute > 59 || hour > 23 || day < 1 || day > 31 || month < 1 || month > 12 ||
        year > 99)
        return -1;
    int64_t days = rtc_days_from_civil(century * 100 + year, month, day);
    return days * 86400 + hour * 3600 + minute * 60 + second;
}
