/*
 * `virtio`: the virtio devices, their transport, features and queues; and
 * the test-only power hooks `virtio freeze|thaw|restore` (virtio/virtio.h).
 */
#include "console/console.h"   // console_printf
#include "lib/string.h"        // strcmp
#include "shell/commands.h"    // shell_virtio_commands
#include "virtio/virtio.h"     // virtio_*
#include "virtio/virtio_pci.h" // struct virtio_transport

static void print_features(const struct virtio_device *d)
{
    const char *separator = "";

    console_printf(" features=");
    for (unsigned bit = 0; bit < 64; bit++) {
        if (!((d->features >> bit) & 1))
            continue;
        const char *name = virtio_feature_name(d, bit);
        if (name)
            console_printf("%s%s", separator, name);
        else
            console_printf("%sbit%u", separator, bit);
        separator = ",";
    }
    if (!*separator)
        console_printf("none");
}

static unsigned active_queues(const struct virtio_device *d)
{
    unsigned active = 0;

    for (unsigned q = 0; q < d->queue_count; q++)
        active += d->queues[q].active;
    return active;
}

static void command_virtio(int argc, char **argv)
{
    if (argc == 2) {
        int (*hook)(void) = strcmp(argv[1], "freeze") == 0   ? virtio_freeze_all
                            : strcmp(argv[1], "thaw") == 0    ? virtio_thaw_all
                            : strcmp(argv[1], "restore") == 0 ? virtio_restore_all
                                                              : 0;
        if (!hook) {
            shell_error("virtio: unknown argument '%s' (freeze, thaw or restore)", argv[1]);
            return;
        }
        int result = hook();
        if (result != 0)
            shell_error("virtio: %s failed", argv[1]);
        else
            console_printf("virtio %s ok\n", argv[1]);
        return;
    }
    for (unsigned i = 0; i < virtio_device_count(); i++) {
        const struct virtio_device *d = virtio_device_get(i);
        console_printf("virtio dev=%u type=%s pci=%02x:%02x.%x transport=%s driver=%s irq=%s",
                       d->index, virtio_type_name(d->type), d->pci_bus, d->pci_device,
                       d->pci_function, d->transport ? d->transport->name : "none",
                       d->driver ? d->driver->name : "-",
                       !d->driver || !active_queues(d) ? "-"
                       : d->msix ? (d->msix_per_queue ? "msix" : "msix-shared") : "intx");
        print_features(d);
        console_printf(" queues=%u interrupts=%llu", active_queues(d), (unsigned long long)d->interrupts);
        if (d->error)
            console_printf(" error=\"%s\"", d->error);
        console_printf("\n");
        for (unsigned q = 0; q < d->queue_count; q++) {
            const struct virtio_queue *queue = &d->queues[q];
            if (!queue->active)
                continue;
            const struct virtqueue *vq = &queue->ring;
            const struct vq_stats *s = &vq->stats;
            console_printf("virtqueue dev=%u index=%u size=%u layout=%s indirect_max=%u in_flight=%u "
                           "added=%llu completed=%llu kicks=%llu kicks_suppressed=%llu "
                           "bad_id=%llu stale_id=%llu bad_length=%llu bad_index=%llu broken=%d\n",
                           d->index, q, vq->config.size,
                           vq->config.layout == VQ_SPLIT ? "split" : "packed",
                           vq->config.indirect_max, vq_in_flight(vq),
                           (unsigned long long)s->added, (unsigned long long)s->completed,
                           (unsigned long long)s->kicks, (unsigned long long)s->kicks_suppressed,
                           (unsigned long long)s->bad_id, (unsigned long long)s->stale_id,
                           (unsigned long long)s->bad_length, (unsigned long long)s->bad_index,
                           vq->broken);
        }
    }
}

static const struct shell_command commands[] = {
    { "virtio", "[freeze|thaw|restore]",
      "virtio devices; test only: run every driver's power hook", 0, 1, command_virtio },
};

SHELL_FAMILY(shell_virtio_commands, commands);
